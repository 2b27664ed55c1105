"""The detectors, by name. Each is ``detect(con, platform_for, params, *, accounts, bounds=None) -> list[Finding]``
with a strict pydantic model for its parameters (the job file's ``params``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graphs.optimizer.common import DetectorParams
from graphs.optimizer.detectors import (
    budget_pacing,
    cpa_guard,
    creative_refresh,
    price_mismatch,
    roas_rebalance,
    stock_guard,
)
from graphs.optimizer.findings import Finding


@dataclass(frozen=True)
class Detector:
    """One detector: its name, what it looks for, its parameter model and its function."""

    name: str
    summary: str
    params: type[DetectorParams]
    detect: Callable[..., list[Finding]]
    #: True when each proposal stands on its own, so protective ones (pauses) may go ahead while others wait for
    #: approval; False when they only make sense together (a rebalance keeps the total budget constant).
    independent: bool = True


DETECTORS: dict[str, Detector] = {d.name: d for d in (
    Detector(stock_guard.NAME, "pause ads of out-of-stock products; re-enable the guard's own pauses when back",
             stock_guard.StockGuardParams, stock_guard.detect),
    Detector(roas_rebalance.NAME, "move budget from below-target ROAS to budget-limited above-target holders",
             roas_rebalance.RoasRebalanceParams, roas_rebalance.detect, independent=False),
    Detector(cpa_guard.NAME, "cut budgets (or pause) where CPA exceeds target with enough conversions",
             cpa_guard.CpaGuardParams, cpa_guard.detect),
    Detector(creative_refresh.NAME, "pause ads with CTR far below their ad group and brief new variants",
             creative_refresh.CreativeRefreshParams, creative_refresh.detect),
    Detector(price_mismatch.NAME, "pause ads stating a price the PIM does not have and brief new copy",
             price_mismatch.PriceMismatchParams, price_mismatch.detect),
    Detector(budget_pacing.NAME, "scale daily budgets down when the month would break its cap",
             budget_pacing.BudgetPacingParams, budget_pacing.detect, independent=False),
)}
