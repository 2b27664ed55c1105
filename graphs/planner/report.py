"""The plain-text report of a run: what was asked, what the policy said, what happened, what it likely does."""

from __future__ import annotations

from typing import Any

_MARK = {"allow": "allowed", "deny": "DENIED", "needs_approval": "needs approval"}


def render_report(state: dict[str, Any]) -> str:
    """A report a campaign manager reads in the terminal or in chat."""
    lines: list[str] = []
    mode = "apply" if state.get("apply") else "dry run"
    lines.append(f"run {state['run_id']} ({mode}, by {state['actor']}, {state['source']}): {state.get('status')}")
    for note in state.get("notes") or []:
        lines.append(note)
    review = state.get("review") or {}
    results = state.get("results") or {}
    if not review:
        lines.append("no changes proposed")
    for key, item in review.items():
        verdict = item["verdict"]
        action = item["action"]
        describe = _describe(action)
        line = f"- {describe}: {_MARK[verdict['decision']]}"
        entry = results.get(key)
        if entry is not None:
            result = entry["result"]
            line += f" -> {result['status']}"
            if result.get("message") and result["status"] in ("failed", "denied"):
                line += f" ({result['message']})"
        lines.append(line)
        if verdict["decision"] != "allow":
            for reason in verdict["reasons"]:
                lines.append(f"    {reason['code']}: {reason['message']}")
        if verdict["decision"] == "needs_approval" and verdict.get("approvers"):
            lines.append(f"    approvers: {', '.join(verdict['approvers'])}")
    forecast = state.get("forecast")
    if forecast and forecast.get("totals"):
        for total in forecast["totals"]:
            before, after = total["before"], total["after"]
            lines.append(f"forecast per day ({total['currency']}): spend {before['spend']} -> {after['spend']}, "
                         f"conversions {before['conversions']} -> {after['conversions']}, "
                         f"revenue {before['revenue']} -> {after['revenue']}, "
                         f"ROAS {_roas(before)} -> {_roas(after)}")
    verification = state.get("verification")
    if verification:
        if verification["mismatches"]:
            lines.append("read-back MISMATCH: " + "; ".join(verification["mismatches"]))
        else:
            lines.append(f"read-back verified {verification['checked']} change(s)")
    if state.get("status") == "waiting_approval":
        lines.append(f"waiting for approval: adpilot approve {state['run_id']} --as APPROVER")
    return "\n".join(lines)


def _roas(kpis: dict[str, Any]) -> str:
    from decimal import Decimal

    spend = Decimal(str(kpis["spend"]))
    return f"{Decimal(str(kpis['revenue'])) / spend:.2f}" if spend else "n/a"


def _describe(action: dict[str, Any]) -> str:
    from pydantic import TypeAdapter

    from agent.domain import Action

    try:
        return TypeAdapter(Action).validate_python(action).describe()
    except ValueError:
        return f"{action.get('kind')} {action.get('target', {}).get('id')}"
