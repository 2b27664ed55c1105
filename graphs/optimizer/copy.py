"""From the detectors' copy briefs to new ad variants, written by the copywriter subgraph.

The optimizer's service identity may not create ads (policies/default.yaml: new copy always comes from a
person's run), so the variants are returned for a person to review and submit, never applied by the job.
Copy comes from the bulk model when one is configured, from the copywriter's templates otherwise; both
pass the same guardrails, and every variant starts PAUSED.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agent.domain import CreateAd
from graphs.copywriter.state import Brief
from graphs.copywriter.variants import ProductFacts
from graphs.optimizer.common import rows
from graphs.optimizer.findings import CopyBrief

if TYPE_CHECKING:
    from agent.runtime import Runtime


def copywriter_briefs(con: Any, briefs: Sequence[CopyBrief], *, variants: int = 2,
                      language: str = "de") -> list[Brief]:
    """The copywriter's briefs for ``briefs``: the advertised product's PIM facts, the ad group as target.

    Briefs without a known product are left out: the copywriter writes only what the PIM can back.
    """
    skus = sorted({b.sku for b in briefs if b.sku})
    facts = {r["sku"]: ProductFacts(sku=r["sku"], name=r["name"], brand=r["brand"], category=r["category"],
                                    price=Decimal(r["price"]),
                                    sale_price=Decimal(r["sale_price"]) if r["sale_price"] is not None else None,
                                    currency=r["currency"], description=r["description"], url=r["url"])
             for r in rows(con, "SELECT * FROM products WHERE list_contains(?, sku)", [skus])}
    return [Brief(products=[facts[b.sku]], target=b.ad_group, platform=b.ad_group.platform.value,
                  language=language, variants=variants)
            for b in briefs if b.sku in facts]


def write_variants(runtime: Runtime, briefs: Sequence[CopyBrief], *, router: Any = None) -> list[CreateAd]:
    """New PAUSED ads for ``briefs`` from the copywriter subgraph (bulk model or templates, guardrails on both)."""
    from graphs.copywriter.job import copy_context, write_briefs

    wanted = copywriter_briefs(runtime.warehouse, briefs)
    if not wanted:
        return []
    # Same batch cache and concurrency bound as `adpilot copy`: a rerun of the job costs nothing.
    outcome = write_briefs(runtime, wanted, copy_context(runtime, router=router))
    return list(outcome.actions)
