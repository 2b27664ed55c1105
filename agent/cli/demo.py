"""``adpilot demo``: the embedded world end to end, offline, in one command.

Creates the demo world when the home has none, shows the accounts, then builds a small change set in
code (pause the running ads of out-of-stock products; +10 % budget on the best budget-limited
campaign), validates it against the sandbox and forecasts its impact. Nothing is applied.

The pieces are functions so the planner run can reuse them: ``build_demo_changeset``,
``render_changeset`` and ``changeset_json``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agent.cli.common import HomeOpt, JsonOpt, console, print_json, settings_for
from agent.domain import ActionResult, ChangeSet, EntityRef, Money, SetBudget, SetStatus

if TYPE_CHECKING:
    import duckdb

    from tools.forecast import Forecast, KpiDelta, Kpis

BUDGET_STEP = Decimal("1.10")
LIMITED_SHARE = Decimal("0.5")   # budget-limited on at least half of the window's days
LIMITED_THRESHOLD = Decimal("0.95")


def out_of_stock_running_ads(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str, int]]:
    """(account_id, platform, ad_id, sku, stock) of ads that serve (ad, ad group and campaign ENABLED) while
    their product's stock is zero or below."""
    return [tuple(r) for r in con.execute(
        """SELECT a.account_id, a.platform, a.ad_id, a.sku, i.stock
           FROM ads a JOIN inventory i ON i.sku = a.sku
           JOIN ad_groups g ON g.ad_group_id = a.ad_group_id JOIN campaigns c ON c.campaign_id = a.campaign_id
           WHERE i.stock <= 0 AND a.status = 'ENABLED' AND g.status = 'ENABLED' AND c.status = 'ENABLED'
           ORDER BY a.ad_id""").fetchall()]


def best_budget_limited_campaign(con: duckdb.DuckDBPyConnection, *,
                                 window_days: int = 28) -> dict[str, Any] | None:
    """The running campaign with a budget that spent >= 95 % of it on at least half of the window's days and
    has the best ROAS over the window (ties: lowest id); None when no campaign is budget-limited."""
    last = con.execute("SELECT max(day) FROM performance_daily").fetchall()[0][0]
    if last is None:
        return None
    rows = con.execute(
        """WITH daily AS (
               SELECT campaign_id, day, sum(cost) AS cost, sum(conversion_value) AS value
               FROM performance_daily WHERE day > ? GROUP BY ALL),
           days AS (SELECT account_id, count(DISTINCT day) AS n FROM performance_daily WHERE day > ? GROUP BY 1)
           SELECT c.campaign_id, c.account_id, c.platform, c.name, c.daily_budget, a.currency,
                  count(*) FILTER (WHERE d.cost >= ? * c.daily_budget) / any_value(days.n) AS limited_share,
                  sum(d.value) / sum(d.cost) AS roas
           FROM campaigns c JOIN accounts a USING (account_id) JOIN daily d USING (campaign_id)
           JOIN days ON days.account_id = c.account_id
           WHERE c.status = 'ENABLED' AND c.daily_budget IS NOT NULL
           GROUP BY ALL HAVING sum(d.cost) > 0
           ORDER BY roas DESC, c.campaign_id""",
        [last - timedelta(days=window_days), last - timedelta(days=window_days), LIMITED_THRESHOLD]).fetchall()
    for campaign_id, account_id, platform, name, budget, currency, share, roas in rows:
        if Decimal(str(share)) >= LIMITED_SHARE:
            return {"campaign_id": campaign_id, "account_id": account_id, "platform": platform, "name": name,
                    "daily_budget": Money(amount=budget, currency=currency),
                    "limited_share": Decimal(str(share)).quantize(Decimal("0.01")),
                    "roas": Decimal(str(roas)).quantize(Decimal("0.01"))}
    return None


def build_demo_changeset(con: duckdb.DuckDBPyConnection, *, window_days: int = 28) -> ChangeSet:
    """The demo's change set, built by code from the warehouse (no model, no planted ids).

    Idempotency keys are derived from the change itself, so a change set built twice from the same data
    is applied at most once.
    """
    actions: list[SetStatus | SetBudget] = []
    for account_id, platform, ad_id, sku, stock in out_of_stock_running_ads(con):
        actions.append(SetStatus(
            target=EntityRef(platform=platform, account_id=account_id, kind="ad", id=ad_id), status="PAUSED",
            reason=f"product {sku} is out of stock ({stock} left) but its ad is still running",
            idempotency_key=f"demo-pause-{ad_id}"))
    best = best_budget_limited_campaign(con, window_days=window_days)
    parts = [f"pause {len(actions)} running ad(s) of out-of-stock products"]
    if best is not None:
        new_budget = best["daily_budget"].scaled(BUDGET_STEP)
        actions.append(SetBudget(
            target=EntityRef(platform=best["platform"], account_id=best["account_id"], kind="campaign",
                             id=best["campaign_id"]),
            daily_budget=new_budget,
            reason=(f"{best['name']} is budget-limited on {best['limited_share']:.0%} of the last {window_days} days "
                    f"at ROAS {best['roas']}: +10 % budget"),
            idempotency_key=f"demo-budget-{best['campaign_id']}-{new_budget.to_minor()}"))
        parts.append(f"+10 % budget on {best['name']} ({best['daily_budget']} → {new_budget})")
    return ChangeSet(actions=actions, summary="; ".join(parts))


def _signed(value: Decimal | None, suffix: str = "") -> str:
    if value is None:
        return ""
    return f"{value:+,.2f}{suffix}"


def _plain(value: Decimal | None, suffix: str = "") -> str:
    return "" if value is None else f"{value:,.2f}{suffix}"


def render_changeset(out: Any, changeset: ChangeSet, results: list[ActionResult], forecast: Forecast | None) -> None:
    """Print a change set with its validation results and (optionally) its forecast as rich tables."""
    from rich.table import Table

    by_key = {r.idempotency_key: r for r in results}
    forecasts = {f.idempotency_key: f for f in forecast.actions} if forecast is not None else {}
    out.print(f"[bold]Change set[/bold]: {changeset.summary or f'{len(changeset.actions)} action(s)'}")
    table = Table(show_lines=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("action", overflow="fold")
    table.add_column("validation", overflow="fold")
    if forecast is not None:
        for header in ("Δ spend/day", "Δ conv/day", "Δ revenue/day"):
            table.add_column(header, justify="right", no_wrap=True)
    for number, action in enumerate(changeset.actions, start=1):
        result = by_key.get(action.idempotency_key)
        if result is None:
            verdict = "not checked"
        elif result.ok:
            verdict = f"[green]{result.status}[/green]"
        else:
            verdict = f"[red]{result.status}[/red] {result.error_code or ''}: {result.message}"
        cells = [str(number), f"{action.describe()}\n[dim]{action.reason}[/dim]", verdict]
        item = forecasts.get(action.idempotency_key)
        if forecast is not None:
            delta = item.delta if item is not None else None
            currency = f" {item.currency}" if item is not None and item.currency else ""
            cells += [_signed(delta.spend if delta else None, currency),
                      _signed(delta.conversions if delta else None),
                      _signed(delta.revenue if delta else None, currency)]
        table.add_row(*cells)
    out.print(table)
    if forecast is None:
        return
    failed = sum(1 for r in results if not r.ok)
    out.print(f"validation: {len(results) - failed} of {len(results)} action(s) valid" +
              (f", [red]{failed} failed[/red]" if failed else ""))
    for total in forecast.totals:
        render_total(out, total.currency, total.accounts, total.before, total.after, total.delta,
                     window=(forecast.window_start, forecast.window_end))
    notes = sorted({f.note for f in forecast.actions if f.note})
    for note in notes:
        out.print(f"[dim]• {note}[/dim]")


def render_total(out: Any, currency: str, accounts: list[str], before: Kpis, after: Kpis, delta: KpiDelta, *,
                 window: tuple[Any, Any]) -> None:
    """One before/after/change table of expected daily figures for the touched accounts."""
    from rich.table import Table

    start, end = window
    span = f"{start} – {end}" if start and end else "no history"
    table = Table(title=f"Forecast per day, accounts {', '.join(accounts)} (history {span})")
    for header in ("", "before", "after", "change"):
        table.add_column(header, justify="right" if header else "left", no_wrap=True)
    table.add_row("spend", _plain(before.spend, f" {currency}"), _plain(after.spend, f" {currency}"),
                  _signed(delta.spend, f" {currency}"))
    table.add_row("clicks", _plain(before.clicks), _plain(after.clicks), _signed(delta.clicks))
    table.add_row("conversions", _plain(before.conversions), _plain(after.conversions), _signed(delta.conversions))
    table.add_row("revenue", _plain(before.revenue, f" {currency}"), _plain(after.revenue, f" {currency}"),
                  _signed(delta.revenue, f" {currency}"))
    table.add_row("ROAS", _plain(before.roas), _plain(after.roas), _signed(delta.roas))
    out.print(table)


def changeset_json(changeset: ChangeSet, results: list[ActionResult], forecast: Forecast | None) -> dict[str, Any]:
    """The same content as ``render_changeset``, for ``--json``."""
    return {"changeset": changeset.model_dump(mode="json"),
            "validation": [r.model_dump(mode="json") for r in results],
            "forecast": forecast.model_dump(mode="json") if forecast is not None else None}


DEMO_ACTOR = "anna"
DEMO_SLASH = "/budget 'Sommer Sale' +10%"
DEMO_REQUEST = "pause every ad whose product is out of stock"
DEMO_SCRIPT = Path(__file__).resolve().parent.parent.parent / "graphs" / "planner" / "demo_script.json"


def planner_runs(runtime: Any) -> list[tuple[str, Any]]:
    """A slash command and a free-text request through the whole planner graph, both dry runs.

    The free-text request uses the configured planner model when there is one; offline it replays
    ``graphs/planner/demo_script.json`` (a scripted planner that reads the stock and proposes pauses).
    """
    from agent.models.router import ModelRouter
    from graphs.planner.run import Runner, RunRequest

    runner = Runner(runtime)
    outcomes = [(DEMO_SLASH, runner.start(RunRequest(text=DEMO_SLASH, actor=DEMO_ACTOR)))]
    if not runner.router.is_configured("planner"):
        scripted = runtime.settings.with_overrides(planner_model=f"scripted:{DEMO_SCRIPT}")
        runner = Runner(runtime, router=ModelRouter(scripted, audit=runtime.audit))
    outcomes.append((DEMO_REQUEST, runner.start(RunRequest(text=DEMO_REQUEST, actor=DEMO_ACTOR))))
    return outcomes


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""

    @app.command("demo")
    def demo(json_out: JsonOpt = False, home: HomeOpt = None) -> None:
        """Build the offline demo world if needed, then dry-run a small change set: validation and forecast."""
        from agent.cli.listing import ListKind, list_rows, render_rows
        from agent.runtime import Runtime
        from tools.forecast import forecast
        from tools.warehouse.demo import ensure_demo

        settings = settings_for(home)
        runtime = Runtime(settings)
        try:
            con = runtime.warehouse
            report = ensure_demo(con)
            accounts, total = list_rows(con, ListKind.ACCOUNTS)
            changeset = build_demo_changeset(con)
            results = runtime.sandbox.validate(changeset.actions)
            expected = forecast(con, changeset.actions)
            runs = planner_runs(runtime)
            from agent.optimize import preview_jobs

            nightly = preview_jobs(runtime)
        finally:
            runtime.close()

        if json_out:
            print_json({"home": str(settings.home), "created": report is not None, "accounts": accounts,
                        **changeset_json(changeset, results, expected),
                        "runs": [{"request": request, "run_id": o.run_id, "status": o.status, "report": o.report}
                                 for request, o in runs],
                        "nightly_jobs": [r.model_dump(mode="json") for r in nightly]})
            return
        out = console()
        if report is not None:
            out.print(f"Created the demo world in {settings.warehouse_path} "
                      f"({report.counts.get('ads', 0)} ads, {report.counts.get('performance_daily', 0):,} "
                      f"performance rows, data up to {report.today - timedelta(days=1)}) in {report.seconds:.1f} s")
        else:
            out.print(f"Using the warehouse in {settings.warehouse_path}")
        render_rows(out, ListKind.ACCOUNTS, accounts, total)
        render_changeset(out, changeset, results, expected)
        for request, outcome in runs:
            out.rule(f"adpilot ask {request!r} --as {DEMO_ACTOR}")
            out.print(outcome.report, markup=False, highlight=False)
        from agent.cli.optimize import print_job_report

        out.rule("What the nightly jobs would do (adpilot optimize, dry run)")
        for job_report in nightly:
            print_job_report(out, job_report)
        out.print("Dry run: nothing was applied.")
