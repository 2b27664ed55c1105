"""Running detectors against a runtime: the warehouse, the live platforms and the policy's budget bounds.

``detect_for`` is what a job run uses; ``detector_actions`` is what the planner's ``/stock-guard`` slash
command uses (a person asking for tonight's check now): the same detector with the parameters and accounts
of the job that runs it on schedule, or its defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.domain import Action
from agent.errors import AdpilotError
from graphs.optimizer.common import BudgetBounds, DetectorParams
from graphs.optimizer.detectors import DETECTORS, stock_guard
from graphs.optimizer.findings import Finding

if TYPE_CHECKING:
    from agent.runtime import Runtime


def policy_bounds(policy_file: Path) -> BudgetBounds:
    """Budget bounds from the policy in force; a policy that does not load gives the defaults (the gate then
    denies everything anyway, failing closed)."""
    from policies.loader import load_policy

    try:
        limits = load_policy(policy_file).policy.limits
    except AdpilotError:
        return BudgetBounds()
    return BudgetBounds(max_change_pct=limits.budget.max_change_pct,
                        min_daily_budget={c: v.min_daily_budget for c, v in limits.currencies.items()},
                        max_daily_budget={c: v.max_daily_budget for c, v in limits.currencies.items()})


def detect_for(runtime: Runtime, detector: str, params: DetectorParams, *, accounts: Sequence[str],
               own_pauses: Mapping[tuple[str, str], str] | None = None) -> list[Finding]:
    """Run one detector on the runtime's warehouse and platforms, within the policy's budget bounds.

    ``own_pauses`` (stock guard only) maps (account id, ad id) of ads the calling job paused itself to the
    identity that applied the pause, for platforms that do not record who paused an ad.
    """
    spec = DETECTORS[detector]
    bounds = policy_bounds(runtime.settings.policy_file)
    if detector == stock_guard.NAME:
        return stock_guard.detect(runtime.warehouse, runtime.platform_for, params, accounts=accounts, bounds=bounds,
                                  own_pauses=own_pauses or {})
    return spec.detect(runtime.warehouse, runtime.platform_for, params, accounts=accounts, bounds=bounds)


def detector_actions(runtime: Runtime, detector: str, *, actor: str) -> list[Action]:
    """The actions ``detector`` proposes right now, with the scheduled job's parameters when one runs it.

    ``actor`` is who asked; the policy judges the actions under that identity in the planner run.
    """
    from agent.jobs import jobs_path, load_jobs

    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}")
    params: DetectorParams = DETECTORS[detector].params()
    accounts = runtime.account_ids()
    path = jobs_path(runtime.settings)
    if path.exists():
        job = next((j for j in load_jobs(path).jobs if j.detector == detector and j.enabled), None)
        if job is not None:
            params, accounts = job.detector_params(), list(job.accounts)
    return [finding.action for finding in detect_for(runtime, detector, params, accounts=accounts)]
