"""One copy job from a product filter: briefs, the copywriter subgraph, and what came of it.

Shared by ``adpilot copy``, the planner's ``propose_ad_copy`` tool and the optimizer, so that every
path writes copy the same way: the bulk tier when one is configured (with brand knowledge), the
templates otherwise, the same guardrails, the same batch cache and the same concurrency bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput
from graphs.copywriter.briefs import Selection, build_briefs
from graphs.copywriter.context import CopyContext, default_concurrency
from graphs.copywriter.graph import CopyOutcome, write_copy
from graphs.copywriter.state import Brief
from graphs.copywriter.variants import PlatformName

if TYPE_CHECKING:
    from agent.runtime import Runtime


@dataclass
class CopyJob:
    """A finished copy job: which products, what the copywriter produced, who wrote it, how many in flight."""

    selection: Selection
    outcome: CopyOutcome
    writer: str
    concurrency: int


def copy_context(runtime: Runtime, *, router: Any = None, rules: Any = None) -> CopyContext:
    """The copywriter's dependencies: the policy's brand rules, the bulk tier, brand knowledge when a model writes."""
    from policies.engine import load_engine

    router = router if router is not None else runtime.models
    brand = runtime.brand_knowledge if router.is_configured("bulk") else None
    return CopyContext(rules=rules if rules is not None else load_engine(runtime.settings.policy_file).brand_rules,
                       router=router, brand=brand)


def concurrency_for(runtime: Runtime) -> int:
    """Copy batches in flight: enough to keep the endpoint at its rate limit, no more."""
    return default_concurrency(runtime.settings.requests_per_second)


def write_briefs(runtime: Runtime, briefs: list[Brief], context: CopyContext, *, fresh: bool = False,
                 on_batch: Callable[[Any, bool, int], None] | None = None) -> CopyOutcome:
    """Run the copywriter on ready briefs with the home's batch cache and the rate-derived concurrency bound."""
    cache = None if fresh else runtime.settings.home / "cache" / "copy-batches.sqlite"
    return write_copy(briefs, context, cache_path=cache, max_concurrency=concurrency_for(runtime), on_batch=on_batch)


def copy_job(runtime: Runtime, products: str, *, platform: PlatformName, variants: int, language: str = "de",
             tone: str | None = None, limit: int = 200, router: Any = None, rules: Any = None, fresh: bool = False,
             on_batch: Callable[[Any, bool, int], None] | None = None) -> CopyJob:
    """Copy for the products ``products`` names (SKUs, a category or name words) on ``platform``."""
    from tools.deps import ReadOnlyWarehouse

    selection = build_briefs(ReadOnlyWarehouse(runtime.warehouse), products, platform=platform, variants=variants,
                             language=language, tone=tone, limit=limit)
    if not selection.briefs:
        raise BadInput(f"no product ({selection.how}) has a {platform} ad group: {'; '.join(selection.skipped[:3])}")
    context = copy_context(runtime, router=router, rules=rules)
    outcome = write_briefs(runtime, selection.briefs, context, fresh=fresh, on_batch=on_batch)
    return CopyJob(selection=selection, outcome=outcome, writer=context.model_label(),
                   concurrency=concurrency_for(runtime))
