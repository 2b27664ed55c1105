"""``adpilot copy`` in-process: template copy offline, through the planner run path, bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from tools.warehouse.schema import connect


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["copy", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def ads(path: Path) -> list[tuple]:
    con = connect(path, read_only=True)
    try:
        return con.execute("SELECT ad_id, ad_group_id, sku, status, format, headlines FROM ads "
                           "ORDER BY ad_id").fetchall()
    finally:
        con.close()


def test_dry_run_proposes_paused_ads_and_applies_nothing(demo_warehouse: Path, home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = ads(demo_warehouse)
    code, data = run_json(capsys, "--products", "NK-10000,NK-10001", "--platform", "google", "--variants", "2",
                          "--as", "anna", "--home", str(home))
    assert code == 0
    copy, run = data["copy"], data["run"]
    assert copy["writer"] == "templates" and copy["selection"] == "SKUs" and copy["briefs"] == 2
    assert [(v["sku"], v["status"]) for v in copy["variants"]] == [("NK-10000", "accepted")] * 2 + [
        ("NK-10001", "accepted")] * 2
    review = list(run["review"].values())
    assert run["status"] == "done" and len(review) == 4
    assert all(r["action"]["kind"] == "create_ad" and r["action"]["status"] == "PAUSED" for r in review)
    assert {r["verdict"]["decision"] for r in review} == {"allow"}
    assert ads(demo_warehouse) == before
    # The ad groups are the ones that already advertise each product (computed here with our own SQL).
    con = connect(demo_warehouse, read_only=True)
    expected = {sku: g for sku, g in con.execute(
        "SELECT sku, ad_group_id FROM ads WHERE platform = 'google' AND sku IN ('NK-10000', 'NK-10001')").fetchall()}
    con.close()
    assert {r["action"]["sku"]: r["action"]["target"]["id"] for r in review} == expected


def test_apply_creates_paused_ads_and_a_rerun_hits_the_cache(demo_warehouse: Path, home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = {a[0] for a in ads(demo_warehouse)}
    args = ("--products", "NK-10009,NK-10024", "--platform", "meta", "--variants", "2", "--as", "anna",
            "--home", str(home))
    code, data = run_json(capsys, *args, "--apply")
    assert code == 0 and data["run"]["status"] == "done"
    created = [a for a in ads(demo_warehouse) if a[0] not in before]
    assert len(created) == 4 and {a[3] for a in created} == {"PAUSED"} and {a[4] for a in created} == {"meta_link"}
    assert {a[2] for a in created} == {"NK-10009", "NK-10024"}
    audit = (home / "audit.sqlite").read_bytes()
    assert data["run"]["run_id"].encode() in audit
    code, again = run_json(capsys, *args, "--apply")
    assert code == 0 and again["copy"]["cached_batches"] == again["copy"]["batches"] == 1
    # Same briefs, same idempotency keys: applying the cached copy again creates nothing new.
    assert len([a for a in ads(demo_warehouse) if a[0] not in before]) == 4


def test_category_filter_and_human_output(demo_warehouse: Path, home: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["copy", "--products", "mützen", "--platform", "google", "--variants", "1", "--limit", "5",
                 "--language", "en", "--as", "anna", "--home", str(home)])
    out = capsys.readouterr().out
    assert code == 0
    assert "ad copy for 5 product(s) (category 'Mützen') on google (templates)" in out
    assert "first headline" in out and "accepted" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--products", "NK-99999", "--platform", "google", "--as", "anna"], "no product matches"),
    (["--products", "NK-10000,NK-99999", "--platform", "google", "--as", "anna"], "unknown sku(s): NK-99999"),
    (["--products", "xyzzy plugh", "--platform", "google", "--as", "anna"], "no product matches"),
    (["--products", "NK-10000", "--platform", "google"], "who is acting"),
    (["--products", "NK-10000", "--platform", "google", "--as", "anna", "--language", "Deutsch"], "two-letter"),
    (["--products", "NK-10000", "--platform", "tiktok", "--as", "anna"], "tiktok"),
    (["--products", "NK-10000", "--platform", "google", "--as", "anna", "--language", "fr"], "de and en only"),
    (["--products", "NK-10000", "--platform", "google", "--as", "anna", "--variants", "0"], "1<=x<=10"),
])
def test_bad_input_exits_2_with_one_line(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str], message: str) -> None:
    before = ads(demo_warehouse)
    code = main(["copy", *args, "--home", str(home)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert ads(demo_warehouse) == before


def test_a_failing_bulk_model_exits_1_and_keeps_finished_batches(demo_warehouse: Path, home: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Nine products in two batches (8 + 1), one batch at a time, and a script of eight turns: whichever
    # batch runs first finishes, the other meets the end of the script.
    good = {"headlines": ["Fjord Damen Regenjacke", "Leicht und atmungsaktiv", "Jetzt online bestellen"],
            "descriptions": ["Die Fjord Regenjacke von Nordkamm: leicht, robust und atmungsaktiv.",
                             "Solange der Vorrat reicht. Alle Preise inkl. MwSt."]}
    script = tmp_path / "bulk.json"
    script.write_text(json.dumps([{"tool_calls": [{"name": "RsaVariants", "args": {"variants": [good]}}]}] * 8))
    monkeypatch.setenv("ADPILOT_BULK_MODEL", f"scripted:{script}")
    monkeypatch.setattr("graphs.copywriter.context.default_concurrency", lambda *args, **kwargs: 1)
    before = ads(demo_warehouse)
    skus = ",".join(f"NK-{10000 + i}" for i in range(9))
    code = main(["copy", "--products", skus, "--platform", "google", "--variants", "1", "--as", "anna",
                 "--home", str(home)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "ran out of turns: it has 8 and call 9 was made" in err and "1 finished batch(es) are kept" in err
    assert ads(demo_warehouse) == before
