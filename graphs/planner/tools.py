"""Proposal tools: one per action kind. They never touch a platform; they stage a typed action and
return the policy's verdict, so the model can re-plan within limits.

Each tool's deps is a ``ProposalDeps`` bound to one run: the planner context, the acting identity and
the list the staged actions go to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agent.domain import (
    AddNegativeKeyword,
    CreateAd,
    EntityRef,
    GoogleResponsiveSearchAd,
    MetaAdCreative,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
)
from agent.errors import BadInput
from graphs.planner import gate
from graphs.planner.context import PlannerContext
from tools.registry import one_line_validation_error, tool

REASON = Field(min_length=3, max_length=500, description="Why, in one sentence with the numbers behind it.")


@dataclass
class ProposalDeps:
    """What the proposal tools of one run share."""

    ctx: PlannerContext
    actor: str
    run_id: str
    staged: list[dict[str, Any]] = field(default_factory=list)


class ProposalResult(BaseModel):
    """The outcome of a proposal: staged or not, and the policy's verdict with its reasons."""

    staged: bool = Field(description="True when the action was added to the change set.")
    decision: Literal["allow", "deny", "needs_approval"] = Field(description="The policy's verdict.")
    action: str = Field(description="What the action does, in one line.")
    reasons: list[str] = Field(description="The policy's reasons, in plain words.")


def _stage(deps: ProposalDeps, build: Any) -> ProposalResult:
    try:
        action = build()
    except ValidationError as exc:
        raise BadInput(one_line_validation_error(exc)) from None
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    verdict, _current = gate.evaluate(deps.ctx, action, actor=deps.actor, actions_in_run=len(deps.staged))
    staged = verdict.decision != "deny"
    deps.ctx.runtime.audit.append("proposal", {
        "action": action.model_dump(mode="json"), "verdict": verdict.model_dump(mode="json"), "staged": staged,
        "origin": "model"}, run_id=deps.run_id, actor=deps.actor)
    if staged:
        deps.staged.append({"action": action.model_dump(mode="json"), "origin": "model",
                            "verdict": verdict.model_dump(mode="json")})
    return ProposalResult(staged=staged, decision=verdict.decision, action=action.describe(),
                          reasons=[r.message for r in verdict.reasons])


class ProposeBudgetArgs(BaseModel):
    """Arguments of propose_budget_change."""

    target: EntityRef = Field(description="The campaign (or Meta ad set) whose daily budget changes.")
    daily_budget: Money = Field(description="The new daily budget in the account's currency (not micros, not cents).")
    reason: str = REASON


@tool("propose")
def propose_budget_change(deps: ProposalDeps, args: ProposeBudgetArgs) -> ProposalResult:
    """Propose a new daily budget for a campaign or Meta ad set; returns the policy's verdict."""
    return _stage(deps, lambda: SetBudget(target=args.target, daily_budget=args.daily_budget, reason=args.reason))


class ProposeStatusArgs(BaseModel):
    """Arguments of propose_status_change."""

    target: EntityRef = Field(description="The campaign, ad group / ad set, ad or keyword.")
    status: Literal["ENABLED", "PAUSED"] = Field(description="ENABLED or PAUSED (nothing can be removed).")
    reason: str = REASON


@tool("propose")
def propose_status_change(deps: ProposalDeps, args: ProposeStatusArgs) -> ProposalResult:
    """Propose pausing or enabling an entity; returns the policy's verdict."""
    return _stage(deps, lambda: SetStatus(target=args.target, status=args.status, reason=args.reason))


class ProposeBidArgs(BaseModel):
    """Arguments of propose_bid_change."""

    target: EntityRef = Field(description="The ad group, keyword or campaign whose bid changes.")
    bid_type: Literal["cpc", "target_cpa", "target_roas"] = Field(description="cpc, target_cpa or target_roas.")
    amount: Money | None = Field(default=None, description="For cpc and target_cpa: the new amount.")
    target_roas: Decimal | None = Field(default=None, description="For target_roas: the ratio, 3.5 = 350 %.")
    reason: str = REASON


@tool("propose")
def propose_bid_change(deps: ProposalDeps, args: ProposeBidArgs) -> ProposalResult:
    """Propose a new CPC bid, target CPA or target ROAS; returns the policy's verdict."""
    return _stage(deps, lambda: SetBid(target=args.target, bid_type=args.bid_type, amount=args.amount,
                                       target_roas=args.target_roas, reason=args.reason))


class ProposeAdArgs(BaseModel):
    """Arguments of propose_new_ad."""

    target: EntityRef = Field(description="The ad group / ad set the new ad goes into.")
    google_ad: GoogleResponsiveSearchAd | None = Field(default=None, description="For Google: the search ad.")
    meta_ad: MetaAdCreative | None = Field(default=None, description="For Meta: the link ad.")
    sku: str | None = Field(default=None, description="The product the ad advertises, if any.")
    reason: str = REASON


@tool("propose")
def propose_new_ad(deps: ProposalDeps, args: ProposeAdArgs) -> ProposalResult:
    """Propose a new ad (created PAUSED); returns the policy's verdict."""
    content = args.google_ad or args.meta_ad
    if content is None or (args.google_ad and args.meta_ad):
        raise BadInput("give exactly one of google_ad or meta_ad")
    return _stage(deps, lambda: CreateAd(target=args.target, ad=content, sku=args.sku, reason=args.reason))


class ProposeNegativeKeywordArgs(BaseModel):
    """Arguments of propose_negative_keyword."""

    target: EntityRef = Field(description="The Google campaign or ad group.")
    text: str = Field(min_length=1, max_length=80, description="The keyword, at most 80 characters and 10 words.")
    match_type: Literal["EXACT", "PHRASE", "BROAD"] = Field(default="PHRASE", description="EXACT, PHRASE or BROAD.")
    reason: str = REASON


@tool("propose")
def propose_negative_keyword(deps: ProposalDeps, args: ProposeNegativeKeywordArgs) -> ProposalResult:
    """Propose a negative keyword for a Google campaign or ad group; returns the policy's verdict."""
    return _stage(deps, lambda: AddNegativeKeyword(target=args.target, text=args.text, match_type=args.match_type,
                                                   reason=args.reason))


class ProposeAdCopyArgs(BaseModel):
    """Arguments of propose_ad_copy."""

    products: str = Field(min_length=1, max_length=500,
                          description="Which products: SKUs separated by commas, a category, or words of the name.")
    platform: Literal["google", "meta"] = Field(description="google (responsive search ads) or meta (link ads).")
    variants: int = Field(default=3, ge=1, le=5, description="How many variants per product.")
    language: str = Field(default="de", pattern=r"^[a-z]{2}$", description="Language of the copy, e.g. de or en.")
    tone: str | None = Field(default=None, max_length=200, description="Tone of voice, e.g. 'sachlich, freundlich'.")


class AdCopyResult(BaseModel):
    """What the copywriter wrote and what the policy said about each new ad."""

    written_by: str = Field(description="The bulk model, or the templates when no model is configured.")
    products: int = Field(description="Products the filter matched that have an ad group on the platform.")
    staged: int = Field(description="New PAUSED ads added to the change set.")
    dropped: list[str] = Field(description="Variants the guardrails rejected, with the reason.")
    denied: list[str] = Field(description="Variants the policy denied, with the reason.")
    headlines: list[str] = Field(description="First headline of each staged ad.")


# Copy for more products than this belongs in `adpilot copy`, which shows progress and keeps batches.
MAX_COPY_PRODUCTS = 20


@tool("propose")
def propose_ad_copy(deps: ProposalDeps, args: ProposeAdCopyArgs) -> AdCopyResult:
    """Write new ads for products with the bulk copywriter (guardrails applied) and propose them, PAUSED.

    Use this instead of propose_new_ad when the request needs new ad copy for products.
    """
    from graphs.copywriter.job import copy_job

    ctx = deps.ctx
    job = copy_job(ctx.runtime, args.products, platform=args.platform, variants=args.variants,
                   language=args.language, tone=args.tone, limit=MAX_COPY_PRODUCTS, router=ctx.router,
                   rules=ctx.engine.brand_rules)
    staged: list[str] = []
    denied: list[str] = []
    for action in job.outcome.actions:
        result = _stage(deps, lambda action=action: action)
        (staged if result.staged else denied).append(
            result.action if result.staged else f"{result.action}: {'; '.join(result.reasons)}")
    return AdCopyResult(written_by=job.writer, products=len(job.selection.briefs), staged=len(staged),
                        dropped=[f"{r.sku} #{r.index}: {r.reason}" for r in job.outcome.reports
                                 if r.status == "dropped"],
                        denied=denied, headlines=[a.split(": ", 1)[-1] for a in staged])
