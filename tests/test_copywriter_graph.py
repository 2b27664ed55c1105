"""The copywriter subgraph: repair loop, drops with reasons, Send fan-out, bounded concurrency, cache."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.domain import EntityRef
from agent.errors import ModelError
from agent.models import FunctionChatModel, ModelRouter
from agent.settings import DEFAULT_POLICY, load_settings
from graphs.copywriter.context import CopyContext
from graphs.copywriter.graph import build_graph, write_copy
from graphs.copywriter.state import Brief
from graphs.copywriter.variants import ProductFacts
from policies.engine import load_engine

D = "Solange der Vorrat reicht. Alle Preise inkl. MwSt."
GOOD = {"headlines": ["Fjord Damen Regenjacke", "Leicht und atmungsaktiv", "Jetzt 71,95 € statt 89,99 €"],
        "descriptions": ["Die Fjord Regenjacke von Nordkamm: leicht, robust und atmungsaktiv.",
                         f"Jetzt 20 % sparen. {D}"]}
# Each violating variant breaks one rule the issue names.
TOO_LONG = {**GOOD, "headlines": ["Die Fjord Damen Regenjacke für jedes Wetter", *GOOD["headlines"][1:]]}
GARANTIERT = {**GOOD, "headlines": ["Garantiert trocken", *GOOD["headlines"][1:]]}
WASSERDICHT = {**GOOD, "headlines": ["100% wasserdicht", *GOOD["headlines"][1:]]}
WRONG_PRICE = {**GOOD, "headlines": [*GOOD["headlines"][:2], "Jetzt nur 59,99 €"]}
COMPETITOR = {**GOOD, "headlines": ["Besser als Alpinfux", *GOOD["headlines"][1:]]}
EMAIL = {**GOOD, "descriptions": ["Fragen? Schreib an service@nordkamm-outdoor.example", GOOD["descriptions"][1]]}
FIXED = [
    {"headlines": ["Fjord Regenjacke", "Wetterfest unterwegs", "Statt 89,99 € nur 71,95 €"],
     "descriptions": ["Leichte Regenjacke für Touren im Norden, robust und atmungsaktiv.", D]},
    {"headlines": ["Regenjacke Fjord", "Für Regen und Wind", "Nur 71,95 €"],
     "descriptions": ["Robust und leicht: die Fjord Regenjacke begleitet dich auf jeder Wanderung.", D]},
]


@pytest.fixture(scope="module")
def rules():
    return load_engine(DEFAULT_POLICY).brand_rules


def product(i: int = 0) -> ProductFacts:
    return ProductFacts(sku=f"NK-{10000 + i}", name="Nordkamm Fjord Damen Regenjacke", brand="Nordkamm",
                        category="Regenjacken", price=Decimal("89.99"), sale_price=Decimal("71.95"),
                        description="Nordkamm Fjord Damen Regenjacke: leicht, atmungsaktiv und robust.",
                        url=f"https://www.nordkamm-outdoor.example/p/nk-{10000 + i}")


def brief(i: int = 0, variants: int = 3, platform: str = "google") -> Brief:
    target = (EntityRef(platform="google", account_id="1234567890", kind="ad_group", id=f"gag-{i:04d}")
              if platform == "google" else EntityRef(platform="meta", account_id="act_1001", kind="ad_group",
                                                     id=f"mas-{i:04d}"))
    return Brief(products=[product(i)], target=target, platform=platform, variants=variants)


def rsa_turn(*variants: dict[str, Any]) -> dict[str, Any]:
    return {"content": "", "tool_calls": [{"name": "RsaVariants", "args": {"variants": list(variants)}}]}


def scripted_router(tmp_path: Path, turns: list[dict[str, Any]]) -> ModelRouter:
    """The bulk tier as configured in production, pointed at a scripted model (``scripted:FILE``)."""
    script = tmp_path / "bulk.json"
    script.write_text(json.dumps(turns, ensure_ascii=False), encoding="utf-8")
    settings = load_settings(home=tmp_path / "home", bulk_model=f"scripted:{script}", requests_per_second=0,
                             tokens_per_second=0)
    return ModelRouter(settings)


def test_violating_copy_is_repaired_or_dropped_with_reasons(tmp_path: Path, rules) -> None:
    router = scripted_router(tmp_path, [
        rsa_turn(TOO_LONG, GARANTIERT, WASSERDICHT, WRONG_PRICE, COMPETITOR, EMAIL, GOOD),
        # Round 1: the first two are fixed, the rest come back still broken.
        rsa_turn(FIXED[0], FIXED[1], WASSERDICHT, WRONG_PRICE, COMPETITOR, EMAIL),
        # Round 2: one more is fixed; three remain broken and are dropped.
        rsa_turn({"headlines": ["Fjord für Regentage", "Leicht im Gepäck", "20 % Rabatt auf die Fjord"],
                  "descriptions": ["Atmungsaktiv und robust: eine Regenjacke, die jede Tour mitmacht.", D]},
                 WRONG_PRICE, COMPETITOR, EMAIL),
    ])
    out = write_copy([brief(variants=7)], CopyContext(rules=rules, router=router))
    by_index = {r.index: r for r in out.reports}
    assert router.inner_model("bulk", router.tier_config("bulk").model).remaining == 0
    assert out.model_calls == 3
    repaired = {i: {v.code for v in r.repaired} for i, r in by_index.items()}
    assert repaired[1] == {"too_long"} and repaired[2] == {"do_not_say"} and repaired[3] == {"do_not_say",
                                                                                             "wrong_percentage"}
    assert all(by_index[i].status == "accepted" for i in (1, 2, 3, 7))
    dropped = {i: {v.code for v in by_index[i].violations} for i in (4, 5, 6)}
    assert dropped == {4: {"wrong_price"}, 5: {"competitor"}, 6: {"personal_data", "brand_spelling"}}
    for i in (4, 5, 6):
        assert by_index[i].status == "dropped" and by_index[i].repair_rounds == 2
        assert by_index[i].reason.startswith("fails the guardrails after 2 repair round(s)")
    assert "59,99" in by_index[4].reason and "Alpinfux" in by_index[5].reason
    # Nothing dropped ships: every action is one of the accepted variants, and starts PAUSED.
    assert len(out.actions) == 4
    assert {a.idempotency_key for a in out.actions} == {by_index[i].idempotency_key for i in (1, 2, 3, 7)}
    assert all(a.status == "PAUSED" and a.kind == "create_ad" for a in out.actions)
    shipped = json.dumps([a.ad.model_dump() for a in out.actions], ensure_ascii=False)
    for bad in ("Alpinfux", "59,99", "garantiert", "wasserdicht", "@"):
        assert bad.casefold() not in shipped.casefold()


def test_repair_messages_carry_the_validator_errors(rules) -> None:
    sent: list[str] = []

    def reply(messages: list[Any], info: Any) -> dict[str, Any]:
        sent.append(messages[-1].content)
        return rsa_turn(GARANTIERT) if info.call_number == 1 else rsa_turn(FIXED[0])

    out = write_copy([brief(variants=1)], CopyContext(rules=rules, model=FunctionChatModel(reply)))
    assert "Write 1 clearly different Google responsive search ad variants in German" in sent[0]
    assert "garantiert" in sent[1] and "[do_not_say]" in sent[1] and "Rewrite exactly 1 variant" in sent[1]
    assert [r.status for r in out.reports] == ["accepted"]


def test_near_duplicates_are_removed(rules) -> None:
    twin = {**GOOD, "headlines": ["Fjord Damen Regenjacke", "Leicht und atmungsaktiv.", "Jetzt 71,95 € statt 89,99 €"]}
    model = FunctionChatModel(lambda messages, info: rsa_turn(GOOD, twin, FIXED[0]))
    out = write_copy([brief(variants=3)], CopyContext(rules=rules, model=model))
    assert [r.status for r in out.reports] == ["accepted", "dropped", "accepted"]
    assert out.reports[1].reason.startswith("near-duplicate")


def test_unparseable_answer_gets_a_fresh_attempt(rules) -> None:
    model = FunctionChatModel(lambda messages, info: "no tools today" if info.call_number == 1 else rsa_turn(GOOD))
    out = write_copy([brief(variants=1)], CopyContext(rules=rules, model=model))
    assert model.calls == 2 and [r.status for r in out.reports] == ["accepted"]


def test_send_fans_out_one_branch_per_batch(rules) -> None:
    app = build_graph()
    briefs = [brief(i, variants=1).model_dump(mode="json") for i in range(10)]
    model = FunctionChatModel(lambda messages, info: rsa_turn(GOOD))
    updates = list(app.stream({"briefs": briefs}, context=CopyContext(rules=rules, model=model, batch_size=4),
                              stream_mode="updates"))
    batches = [u["write_batch"]["results"][0] for u in updates if "write_batch" in u]
    assert sorted(b["batch"] for b in batches) == [0, 1, 2]
    assert sorted(len(b["reports"]) for b in batches) == [2, 4, 4]
    final = updates[-1]["collect"]
    assert [a["sku"] for a in final["actions"]] == [f"NK-{10000 + i}" for i in range(10)]
    assert model.calls == 10


class InFlight:
    """A fake bulk model with latency that records how many calls overlap."""

    def __init__(self, latency_s: float = 0.01) -> None:
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0

    def __call__(self, messages: list[Any], info: Any) -> dict[str, Any]:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
        try:
            time.sleep(self.latency_s)
            return rsa_turn(GOOD)
        finally:
            with self.lock:
                self.now -= 1


def test_a_200_product_job_keeps_in_flight_calls_bounded(tmp_path: Path, rules) -> None:
    meter = InFlight()
    settings = load_settings(home=tmp_path / "home", requests_per_second=0, tokens_per_second=0)
    router = ModelRouter(settings, overrides={"bulk": FunctionChatModel(meter)})
    out = write_copy([brief(i, variants=1) for i in range(200)], CopyContext(rules=rules, router=router, batch_size=5),
                     max_concurrency=6)
    assert len(out.actions) == 200 and out.model_calls == 200 and out.batches == 40
    assert 1 < meter.max <= 6


def test_finished_batches_survive_a_failure_and_a_rerun_hits_the_cache(tmp_path: Path, rules) -> None:
    cache = tmp_path / "copy.sqlite"
    briefs = [brief(i, variants=1) for i in range(6)]

    def flaky(messages: list[Any], info: Any) -> dict[str, Any]:
        # One batch at a time, two briefs each: calls 1-4 finish two batches, call 5 fails the third.
        if info.call_number == 5:
            raise ModelError("bulk model mistral-small-latest failed after 5 attempts: HTTP 503")
        return rsa_turn(GOOD)

    first = FunctionChatModel(flaky)
    with pytest.raises(ModelError):
        write_copy(briefs, CopyContext(rules=rules, model=first, batch_size=2), cache_path=cache, max_concurrency=1)
    healthy = FunctionChatModel(lambda messages, info: rsa_turn(GOOD))
    out = write_copy(briefs, CopyContext(rules=rules, model=healthy, batch_size=2), cache_path=cache)
    # Batches 0 and 1 were written before the failure: only the failed batch calls the model again.
    assert out.cached_batches == 2 and healthy.calls == 2 and len(out.actions) == 6
    again = FunctionChatModel(lambda messages, info: rsa_turn(GOOD))
    rerun = write_copy(briefs, CopyContext(rules=rules, model=again, batch_size=2), cache_path=cache)
    assert rerun.cached_batches == 3 and again.calls == 0 and rerun.model_calls == 0
    assert [a.idempotency_key for a in rerun.actions] == [a.idempotency_key for a in out.actions]


def test_without_a_bulk_model_the_templates_write(tmp_path: Path, rules) -> None:
    router = ModelRouter(load_settings(home=tmp_path / "home"))
    assert not router.is_configured("bulk")
    out = write_copy([brief(0, variants=3), brief(1, variants=2, platform="meta")], CopyContext(rules=rules,
                                                                                                 router=router))
    assert [r.source for r in out.reports] == ["template"] * 5 and out.model_calls == 0
    assert [a.ad.format for a in out.actions] == ["google_rsa"] * 3 + ["meta_link"] * 2


class Passage:
    def __init__(self, text: str) -> None:
        self.text = text


class FakeBrand:
    """Brand knowledge that records what each branch asked for."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, int, str | None]] = []

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[Passage]:
        self.queries.append((query, k, language))
        return [Passage("Tonalität: sachlich, draußen zu Hause, nie reißerisch.")]


def test_each_brief_retrieves_brand_knowledge_and_pim_text_is_redacted(rules) -> None:
    brand = FakeBrand()
    seen: list[str] = []

    def reply(messages: list[Any], info: Any) -> dict[str, Any]:
        seen.append(messages[0].content)
        return rsa_turn(GOOD)

    noisy = product(0).model_copy(update={"description": "Regenjacke: leicht. Rückfragen an max.muster@example.org"})
    job = [Brief(products=[noisy], target=brief(0).target, platform="google", variants=1), brief(1, variants=1)]
    write_copy(job, CopyContext(rules=rules, model=FunctionChatModel(reply), brand=brand, brand_passages=2))
    assert [(k, lang) for _, k, lang in brand.queries] == [(2, "de"), (2, "de")]
    assert all("Regenjacken" in q for q, _, _ in brand.queries)
    assert all("draußen zu Hause" in s for s in seen)
    assert "max.muster@example.org" not in seen[0] and "[redacted:email]" in seen[0]
