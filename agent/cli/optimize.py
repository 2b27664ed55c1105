"""``adpilot optimize`` (run jobs once) and ``adpilot scheduler`` (run them on their cron schedules)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.common import ApplyOpt, HomeOpt, JsonOpt, console, print_json, settings_for
from agent.errors import EXIT_FAILURE, EXIT_OK, EXIT_STOPPED, BadInput

JobsArg = Annotated[list[str] | None, typer.Argument(help="Job names (default: every enabled job).",
                                                     show_default=False)]


def _runtime(home: Path | None) -> Any:
    from agent.runtime import Runtime
    from tools.warehouse.demo import ensure_demo

    runtime = Runtime(settings_for(home))
    ensure_demo(runtime.warehouse)
    return runtime


def _select(jobs: list[Any], names: list[str] | None) -> list[Any]:
    if not names:
        return [j for j in jobs if j.enabled]
    by_name = {j.name: j for j in jobs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BadInput(f"no job {unknown[0]!r} (known: {', '.join(by_name) or 'none'})")
    return [by_name[n] for n in dict.fromkeys(names)]


def _exit_code(statuses: list[str]) -> int:
    """1 when a run failed, 3 when one was stopped by policy or waits for approval, else 0 (DESIGN.md)."""
    if any(s in ("failed", "running") for s in statuses):
        return EXIT_FAILURE
    if any(s in ("waiting_approval", "denied", "rejected") for s in statuses):
        return EXIT_STOPPED
    return EXIT_OK


def print_job_report(out: Any, report: Any) -> None:
    """One job run: its findings with verdicts and results, briefs, approvals and the explanation."""
    runs = f" (run {', '.join(report.run_ids)})" if report.run_ids else ""
    out.print(f"[bold]{report.job}[/bold] — {report.detector}, {report.mode.replace('_', ' ')} as {report.identity}, "
              f"data up to {report.as_of}: {report.status.replace('_', ' ')}{runs}")
    for finding in report.findings:
        key = finding.action.idempotency_key
        verdict = report.verdicts.get(key, "")
        result = report.results.get(key, "")
        tail = ", ".join(filter(None, [verdict.replace("_", " "), result]))
        out.print(f"  - {finding.action.describe()}" + (f" [{tail}]" if tail else ""), markup=False)
        out.print(f"      {finding.action.reason}", markup=False)
    if report.settled:
        out.print(f"  {len(report.settled)} earlier proposal(s) already applied or waiting for approval: not repeated")
    if report.dropped:
        out.print(f"  the planner model advised against {len(report.dropped)} proposal(s): {', '.join(report.dropped)}",
                  markup=False)
    if report.briefs:
        out.print(f"  copy briefs: {len(report.briefs)}; new paused variants written: {len(report.variants)} "
                  "(for a person to review — the job's identity may not create ads)", markup=False)
        for variant in report.variants:
            out.print(f"      {variant.describe()}", markup=False)
    if report.status == "waiting_approval":
        for run_id in (r for r, status in report.run_status.items() if status == "waiting_approval"):
            who = report.approvers[0] if report.approvers else "APPROVER"
            out.print(f"  approve with: adpilot approve {run_id} --as {who}", markup=False)
    if report.explained_by == "model":
        out.print(f"  planner model: {report.explanation}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``optimize`` and ``scheduler`` commands."""

    @app.command()
    def optimize(
        jobs: JobsArg = None,
        apply: ApplyOpt = False,
        check: Annotated[bool, typer.Option("--check", help="Only validate the jobs file and list its jobs.")] = False,
        home: HomeOpt = None,
        json_out: JsonOpt = False,
    ) -> int:
        """Run optimisation jobs once, now: dry run unless --apply, under the policy as each job's identity."""
        from agent.optimize import load_job_file, run_job
        from agent.scheduler import JobStore

        runtime = _runtime(home)
        try:
            selected = _select(load_job_file(runtime), jobs)
            if check:
                rows = [{"name": j.name, "cron": j.cron, "timezone": j.timezone, "detector": j.detector,
                         "mode": j.mode, "identity": j.identity, "catch_up": j.catch_up, "accounts": j.accounts,
                         "enabled": j.enabled} for j in selected]
                if json_out:
                    print_json(rows)
                else:
                    for row in rows:
                        typer.echo(f"{row['name']:<18} {row['cron']:<14} {row['detector']:<17} {row['mode']:<8} "
                                   f"as {row['identity']}, catch_up {row['catch_up']}")
                return EXIT_OK
            store = JobStore.for_home(runtime.settings.home)
            try:
                reports = [run_job(runtime, job, apply=apply, store=store) for job in selected]
            finally:
                store.close()
        finally:
            runtime.close()
        if json_out:
            print_json([r.model_dump(mode="json") for r in reports])
        else:
            out = console()
            for report in reports:
                print_job_report(out, report)
        return _exit_code([r.status for r in reports])

    @app.command()
    def scheduler(
        once: Annotated[bool, typer.Option("--once", help="One pass: run what is due now, then stop.")] = False,
        until: Annotated[str | None, typer.Option(help="Stop before the first slot after this time "
                                                       "(ISO 8601; UTC unless an offset is given).")] = None,
        status: Annotated[bool, typer.Option("--status", help="Show the recorded job runs and stop.")] = False,
        home: HomeOpt = None,
        json_out: JsonOpt = False,
    ) -> int:
        """Run the jobs on their cron schedules: no overlapping runs of a job, nothing lost or doubled on restart."""
        from agent.optimize import job_runner, load_job_file
        from agent.scheduler import JobStore, Scheduler

        stop = _until(until)
        runtime = _runtime(home)
        store = JobStore.for_home(runtime.settings.home)
        try:
            if status:
                records = store.runs()
                if json_out:
                    print_json([r.model_dump(mode="json") for r in records])
                else:
                    for r in records:
                        typer.echo(f"{r.scheduled_for:%Y-%m-%d %H:%M} UTC  {r.job:<18} {r.status:<8} "
                                   f"{r.outcome or '':<17} {r.run_id or '':<13} {r.note or ''}".rstrip())
                return EXIT_OK
            jobs = load_job_file(runtime)
            sched = Scheduler(jobs, store, job_runner(runtime, store))
            if not json_out:
                due = sched.next_due()
                console().print(f"scheduler: {len(sched.jobs)} jobs; next slot "
                                f"{due:%Y-%m-%d %H:%M} UTC" if due else "scheduler: no enabled jobs", markup=False)
            def idle(seconds: float) -> None:
                # Release the warehouse's write lock between slots so adpilot ask/ls/... work meanwhile.
                runtime.release_warehouse()
                time.sleep(seconds)

            reports = sched.run(once=once, until=stop, sleep=idle)
        finally:
            store.close()
            runtime.close()
        ran = [r for report in reports for r in report.ran]
        if json_out:
            print_json([r.model_dump(mode="json") for r in reports])
        else:
            for report in reports:
                for r in report.planned:
                    if r.status == "missed":
                        typer.echo(f"missed  {r.job} {r.scheduled_for:%Y-%m-%d %H:%M} UTC: {r.note}")
                for r in report.recovered:
                    typer.echo(f"retry   {r.job} {r.scheduled_for:%Y-%m-%d %H:%M} UTC: {r.note}")
                for r in report.ran:
                    typer.echo(f"ran     {r.job} {r.scheduled_for:%Y-%m-%d %H:%M} UTC: {r.outcome} {r.run_id or ''} "
                               f"{r.note or ''}".rstrip())
        # Runs waiting for approval or denied by policy are the schedule working as meant; a failed run is not.
        return EXIT_FAILURE if any(r.status == "failed" for r in ran) else EXIT_OK


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"--until {text!r} is not an ISO 8601 time, e.g. 2026-11-25T06:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
