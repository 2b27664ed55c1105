"""The copywriter subgraph: briefs in, guardrail-checked ``create_ad`` actions (PAUSED) out.

::

    plan ──Send per batch──► write_batch (cached per batch) ──► collect
             (fan-out)         per brief: brand notes → prompt → bulk model (structured output)
                               → check_variant → repair rounds → drop with reason → de-duplicate
                               (no bulk model configured: template copy, same guardrails)

Concurrency: each batch is one ``Send`` branch; ``max_concurrency`` in the run config bounds how
many run at once (so how many bulk calls are in flight), and the router's rate limiter paces the
calls themselves, so a large job runs near the endpoint's rate without a burst of 429s.
Durability: ``write_batch`` results go to a LangGraph node cache (SQLite under the home) as each
batch finishes; a job that fails or is killed keeps every finished batch, and a rerun of the same
briefs replays them from the cache instead of calling the model again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import CachePolicy, Send
from pydantic import TypeAdapter, ValidationError

from agent.domain import CreateAd, DomainError, GoogleResponsiveSearchAd, MetaAdCreative
from agent.errors import BadInput
from graphs.copywriter import guardrails as guardrails_module
from graphs.copywriter import templates as templates_module
from graphs.copywriter.context import CopyContext
from graphs.copywriter.guardrails import (
    BrandRules,
    GuardContext,
    Violation,
    check_variant,
    near_duplicate_of,
    shared_tokens,
)
from graphs.copywriter.prompts import initial_messages, repair_messages
from graphs.copywriter.state import BatchResult, BatchTask, Brief, CopyInput, CopyState, VariantReport, batch_key
from graphs.copywriter.templates import TEMPLATE_LANGUAGES, template_variants
from graphs.copywriter.variants import MetaCopy, RsaCopy, Variant, variants_model

# Copy made by an older version of the rules or frames must not come back from the cache.
_CODE_VERSION = hashlib.sha256(Path(guardrails_module.__file__).read_bytes()
                               + Path(templates_module.__file__).read_bytes()).hexdigest()[:16]


def _rules(context: CopyContext) -> BrandRules:
    rules = context.rules
    return rules if isinstance(rules, BrandRules) else BrandRules.model_validate(rules or {})


def job_fingerprint(context: CopyContext) -> str:
    """Everything besides the briefs that shapes the copy: writer, prompt, brand rules, guardrail code."""
    parts = {"writer": context.model_label(), "rules": _rules(context).model_dump(), "code": _CODE_VERSION,
             "repair_rounds": context.repair_rounds, "passages": context.brand_passages if context.brand else 0}
    if context.uses_model():
        prompt = context.load_prompt()
        parts["prompt"] = f"{prompt.name}:{prompt.version}:{prompt.sha256}"
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:24]


# --- nodes -------------------------------------------------------------------------------------------


def plan(state: CopyState, runtime: Runtime[CopyContext]) -> dict[str, Any]:
    """Validate the briefs and cut them into batches, each keyed for the cache."""
    context = runtime.context
    if context.batch_size < 1:
        raise BadInput("batch size must be at least 1")
    briefs = [Brief.model_validate(b) for b in state["briefs"]]
    if not context.uses_model():
        unsupported = sorted({b.language for b in briefs} - set(TEMPLATE_LANGUAGES))
        if unsupported:
            raise BadInput(f"without a bulk model the templates write {' and '.join(TEMPLATE_LANGUAGES)} only, not "
                           f"{', '.join(unsupported)}: configure a bulk model (MISTRAL_API_KEY) for other languages")
    fingerprint = job_fingerprint(context)
    batches: list[BatchTask] = []
    for number, start in enumerate(range(0, len(briefs), context.batch_size)):
        chunk = briefs[start:start + context.batch_size]
        batches.append(BatchTask(batch=number, key=batch_key(chunk, fingerprint),
                                 briefs=[b.model_dump(mode="json") for b in chunk]))
    return {"batches": batches}


def fan_out(state: CopyState) -> list[Send] | str:
    """One ``Send`` per batch; straight to ``collect`` when there is nothing to write."""
    return [Send("write_batch", task) for task in state.get("batches", [])] or "collect"


def write_batch(task: BatchTask, runtime: Runtime[CopyContext]) -> dict[str, Any]:
    """Write, check, repair and de-duplicate the copy of every brief in one batch."""
    context = runtime.context
    result = BatchResult(batch=task["batch"], key=task["key"])
    for raw in task["briefs"]:
        _write_brief(Brief.model_validate(raw), context, result)
    return {"results": [result.model_dump(mode="json")]}


def collect(state: CopyState) -> dict[str, Any]:
    """Merge the batch results in brief order."""
    results = sorted((BatchResult.model_validate(r) for r in state.get("results", [])), key=lambda r: r.batch)
    return {"actions": [a for r in results for a in r.actions],
            "reports": [rep.model_dump(mode="json") for r in results for rep in r.reports],
            "notes": [n for r in results for n in r.notes]}


def build_graph(checkpointer: Any = None, cache: Any = None) -> Any:
    """Compile the copywriter graph; ``cache`` (a LangGraph ``BaseCache``) keeps finished batches."""
    graph = StateGraph(CopyState, input_schema=CopyInput, context_schema=CopyContext)
    graph.add_node("plan", plan)
    graph.add_node("write_batch", write_batch, cache_policy=CachePolicy(key_func=_task_key))
    graph.add_node("collect", collect)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["write_batch", "collect"])
    graph.add_edge("write_batch", "collect")
    graph.add_edge("collect", END)
    return graph.compile(checkpointer=checkpointer, cache=cache)


def _task_key(task: BatchTask) -> str:
    return task["key"]


# --- writing one brief ------------------------------------------------------------------------------


def _normalised(variant: Variant) -> Variant:
    """Whitespace collapsed: a model's stray double space or trailing blank is not a violation."""
    if isinstance(variant, RsaCopy):
        return variant.model_copy(update={
            "headlines": [" ".join(h.split()) for h in variant.headlines],
            "descriptions": [" ".join(d.split()) for d in variant.descriptions],
            "path1": " ".join(variant.path1.split()) or None if variant.path1 else None,
            "path2": " ".join(variant.path2.split()) or None if variant.path2 else None})
    return variant.model_copy(update={k: " ".join(getattr(variant, k).split())
                                      for k in ("primary_text", "headline", "description")})


@dataclass
class _Candidate:
    """A variant on its way through the repair loop."""

    index: int
    variant: Variant
    violations: list[Violation] = field(default_factory=list)
    repaired: list[Violation] = field(default_factory=list)
    rounds: int = 0


def _passages(brief: Brief, context: CopyContext) -> list[Any]:
    if context.brand is None:
        return []
    product = brief.products[0]
    query = f"{product.category} {product.name} Tonalität Aussagen Claims tone of voice"
    try:
        return context.brand.search(query, k=context.brand_passages, language=brief.language)
    except BadInput:
        # A language the brand documents do not cover: search them all rather than write blind.
        return context.brand.search(query, k=context.brand_passages, language=None)


def _ask(structured: Any, messages: list[Any]) -> tuple[list[Variant], str | None]:
    """One bulk call; the variants it returned, or the reason it returned none that parse."""
    out = structured.invoke(messages)
    parsed, error = out.get("parsed"), out.get("parsing_error")
    if parsed is None:
        return [], f"the answer did not match the schema ({str(error or 'no structured output')[:200]})"
    return [_normalised(v) for v in parsed.variants], None


def _model_candidates(brief: Brief, gctx: GuardContext, context: CopyContext,
                      result: BatchResult) -> list[_Candidate]:
    """Variants from the bulk model, each checked, failing ones sent back for at most N repair rounds."""
    structured = context.chat_model().with_structured_output(variants_model(brief.platform), include_raw=True)
    base = initial_messages(context.load_prompt(), brief, _rules(context), _passages(brief, context))
    variants, parse_error = _ask(structured, base)
    result.model_calls += 1
    candidates = [_Candidate(index=i, variant=v, violations=check_variant(v, gctx))
                  for i, v in enumerate(variants[:brief.variants], start=1)]
    for round_number in range(1, context.repair_rounds + 1):
        failing = [c for c in candidates if c.violations]
        if not failing and parse_error is None:
            break
        answer, parse_error = _ask(structured, repair_messages(
            base, [(c.variant, c.violations) for c in failing], parse_error))
        result.model_calls += 1
        if not failing:
            # The first answer was unusable: this round is a fresh attempt.
            candidates = [_Candidate(index=i, variant=v, violations=check_variant(v, gctx), rounds=round_number)
                          for i, v in enumerate(answer[:brief.variants], start=1)]
            continue
        for candidate, fixed in zip(failing, answer, strict=False):
            now = check_variant(fixed, gctx)
            still = {(v.code, v.field) for v in now}
            candidate.repaired += [v for v in candidate.violations if (v.code, v.field) not in still]
            candidate.variant, candidate.violations, candidate.rounds = fixed, now, round_number
        for candidate in failing[len(answer):]:
            candidate.rounds = round_number  # the model left it out of its answer: still failing
    if parse_error is not None and not candidates:
        result.notes.append(f"{brief.products[0].sku}: no usable answer from the bulk model: {parse_error}")
    if len(candidates) < brief.variants:
        result.notes.append(f"{brief.products[0].sku}: the model wrote {len(candidates)} of {brief.variants} "
                            f"variants")
    return candidates


def _template_candidates(brief: Brief, gctx: GuardContext, result: BatchResult) -> list[_Candidate]:
    made = template_variants(gctx, brief.variants)
    result.notes += [f"{brief.products[0].sku}: {note}" for note in made.skipped if note.startswith("the templates")]
    return [_Candidate(index=i, variant=v, violations=check_variant(v, gctx))
            for i, v in enumerate(made.variants, start=1)]


def _ad(variant: Variant, url: str) -> GoogleResponsiveSearchAd | MetaAdCreative:
    if isinstance(variant, RsaCopy):
        return GoogleResponsiveSearchAd(headlines=variant.headlines, descriptions=variant.descriptions,
                                        final_url=url, path1=variant.path1, path2=variant.path2)
    assert isinstance(variant, MetaCopy)
    return MetaAdCreative(primary_text=variant.primary_text, headline=variant.headline,
                          description=variant.description, link=url)


def _headline(variant: Variant) -> str:
    if isinstance(variant, RsaCopy):
        return variant.headlines[0] if variant.headlines else ""
    return variant.headline


def _write_brief(brief: Brief, context: CopyContext, result: BatchResult) -> None:
    product = brief.products[0]
    gctx = GuardContext.build(brief.products, _rules(context), brief.platform, brief.language)
    source = "model" if context.uses_model() else "template"
    candidates = (_model_candidates(brief, gctx, context, result) if source == "model"
                  else _template_candidates(brief, gctx, result))
    kept: list[Variant] = []
    ignore = shared_tokens(gctx)
    for c in candidates:
        report = VariantReport(sku=product.sku, target=brief.target.key(), index=c.index, status="dropped",
                               source=source, repair_rounds=c.rounds, repaired=c.repaired,
                               violations=c.violations, headline=_headline(c.variant))
        if c.violations:
            rounds = f" after {c.rounds} repair round(s)" if source == "model" else ""
            report.reason = f"fails the guardrails{rounds}: {c.violations[0]}"
        elif (dup := near_duplicate_of(c.variant, kept, ignore)) is not None:
            report.reason = f"near-duplicate of an accepted variant ({dup[1]:.0%} of its words)"
        else:
            try:
                action = CreateAd(target=brief.target, ad=_ad(c.variant, product.url), sku=product.sku,
                                  idempotency_key=f"copy-{brief.key()}-{c.index}",
                                  reason=f"new {source} copy for {product.sku} ({product.name}), variant {c.index}")
            except (ValidationError, DomainError) as exc:
                report.reason = f"not a valid ad: {str(exc).splitlines()[0][:200]}"
            else:
                kept.append(c.variant)
                report.status, report.idempotency_key = "accepted", action.idempotency_key
                result.actions.append(action.model_dump(mode="json"))
        result.reports.append(report)


# --- running a job -----------------------------------------------------------------------------------


_REPORTS = TypeAdapter(list[VariantReport])


@dataclass
class CopyOutcome:
    """What a copy job produced."""

    actions: list[CreateAd]
    reports: list[VariantReport]
    notes: list[str]
    batches: int
    cached_batches: int
    model_calls: int


def write_copy(briefs: list[Brief], context: CopyContext, *, cache_path: Path | None = None,
               max_concurrency: int | None = None,
               on_batch: Callable[[BatchResult, bool, int], None] | None = None) -> CopyOutcome:
    """Run a copy job: ``on_batch(result, cached, total_batches)`` after each batch (progress bars).

    ``cache_path`` (SQLite) keeps finished batches across runs; ``max_concurrency`` bounds the batches
    (and so the bulk calls) in flight. ``model_calls`` counts this run's calls (cached batches made none).
    """
    from langgraph.cache.sqlite import SqliteCache

    cache = None
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = SqliteCache(path=str(cache_path))
    app = build_graph(cache=cache)
    config: dict[str, Any] = {"max_concurrency": max_concurrency} if max_concurrency else {}
    total = (len(briefs) + max(1, context.batch_size) - 1) // max(1, context.batch_size)
    cached = calls = 0
    final: dict[str, Any] = {}
    for mode, chunk in app.stream({"briefs": [b.model_dump(mode="json") for b in briefs]}, config,
                                  context=context, stream_mode=["updates", "values"]):
        if mode == "values":
            final = chunk
            continue
        update = chunk.get("write_batch")
        if update is None:
            continue
        hit = bool(chunk.get("__metadata__", {}).get("cached"))
        batch = BatchResult.model_validate(update["results"][0])
        cached += hit
        calls += 0 if hit else batch.model_calls
        if on_batch is not None:
            on_batch(batch, hit, total)
    return CopyOutcome(actions=[CreateAd.model_validate(a) for a in final.get("actions", [])],
                       reports=_REPORTS.validate_python(final.get("reports", [])), notes=list(final.get("notes", [])),
                       batches=total, cached_batches=cached, model_calls=calls)
