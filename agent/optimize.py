"""Job runs: a job's detector proposes, a planner run disposes.

``run_job`` runs one job once: the detector looks at the warehouse and the live platforms; proposals the job
already applied (or sent for approval) are dropped using the job ledger, so a rerun proposes nothing new; when
a planner model is configured it reviews the proposals (it may only drop some, never add or change) and writes
the explanation, otherwise a deterministic explanation is built from the proposals' reasons; then the actions
go to a planner run as the job's service identity: policy, approval, dry run or apply, audit. ``preview_jobs``
is the dry run of every enabled job that ``adpilot demo`` shows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from agent.domain import CreateAd
from agent.errors import AdpilotError
from agent.jobs import Job, jobs_path, load_jobs
from agent.scheduler import JobStore, Runner, RunSummary
from graphs.optimizer.findings import CopyBrief, Finding

if TYPE_CHECKING:
    from agent.runtime import Runtime
    from graphs.planner.run import Runner as PlannerRunner

ReportStatus = Literal["nothing_to_do", "done", "waiting_approval", "rejected", "denied", "running", "failed"]


class JobReview(BaseModel):
    """The planner model's review of a job's proposals."""

    explanation: str = Field(description="Two to five sentences for the campaign manager: what the job found, what "
                                         "it proposes and why, with the numbers from the proposals.")
    drop: list[str] = Field(default_factory=list, description="Keys of proposals that should not go ahead; empty "
                                                              "when all are sound.")


class JobRunReport(BaseModel):
    """What one run of one job did."""

    job: str
    detector: str
    mode: Literal["dry_run", "apply"]
    identity: str
    as_of: date | None = Field(description="The warehouse's latest day the detector judged.")
    status: ReportStatus
    findings: list[Finding] = Field(default_factory=list, description="The proposals sent to the planner run.")
    settled: dict[str, str] = Field(default_factory=dict,
                                    description="Proposals skipped because an earlier run applied them or sent them "
                                                "for approval (key → status).")
    dropped: list[str] = Field(default_factory=list, description="Keys the planner model advised against.")
    briefs: list[CopyBrief] = Field(default_factory=list, description="Copy briefs for the copywriter.")
    variants: list[CreateAd] = Field(default_factory=list,
                                     description="New PAUSED ads the copywriter wrote for the briefs; for a person "
                                                 "to review and submit (the job's identity may not create ads).")
    explanation: str = ""
    explained_by: Literal["model", "rules"] = "rules"
    run_id: str | None = Field(default=None, description="The (first) planner run.")
    run_ids: list[str] = Field(default_factory=list, description="Every planner run of this job run.")
    run_status: dict[str, str] = Field(default_factory=dict, description="Status of each planner run.")
    verdicts: dict[str, str] = Field(default_factory=dict, description="Policy decision per action key.")
    results: dict[str, str] = Field(default_factory=dict, description="Platform result per action key.")
    approvers: list[str] = Field(default_factory=list)
    report: str = Field(default="", description="The planner run's report.")

    def summary(self) -> RunSummary:
        """The scheduler's one-line record of this run."""
        note = f"{len(self.findings)} proposed, {len(self.settled)} already settled"
        if self.status == "waiting_approval":
            note += f"; waiting for approval by {', '.join(self.approvers) or 'an approver'}"
        return RunSummary(outcome=self.status, run_id=self.run_id, note=note)


def run_job(runtime: Runtime, job: Job, *, apply: bool | None = None, store: JobStore | None = None,
            planner: PlannerRunner | None = None, now: datetime | None = None) -> JobRunReport:
    """Run ``job`` once (in its own mode unless ``apply`` says otherwise) and record what became of its actions."""
    from graphs.optimizer.common import latest_day
    from graphs.optimizer.run import detect_for
    from graphs.planner.run import Runner as PlannerRunner

    apply = job.mode == "apply" if apply is None else apply
    own_store, own_planner = store is None, planner is None
    store = store or JobStore.for_home(runtime.settings.home)
    planner = planner or PlannerRunner(runtime)
    try:
        _reconcile(store, job, planner, now or datetime.now(UTC))
        as_of = latest_day(runtime.warehouse)
        findings = [_rekey(f, job) for f in detect_for(runtime, job.detector, job.detector_params(),
                                                       accounts=job.accounts, own_pauses=_own_pauses(store, job))]
        settled = store.settled(job.name, [f.action.idempotency_key for f in findings])
        fresh = [f for f in findings if f.action.idempotency_key not in settled]
        report = JobRunReport(job=job.name, detector=job.detector, mode="apply" if apply else "dry_run",
                              identity=job.identity, as_of=as_of, status="nothing_to_do", settled=settled,
                              briefs=[f.brief for f in fresh if f.brief is not None])
        if not fresh:
            report.explanation = f"{job.name}: nothing new to propose on data up to {as_of}."
            return report
        return _plan(runtime, job, report, fresh, apply=apply, store=store, planner=planner,
                     now=now or datetime.now(UTC))
    finally:
        if own_planner:
            planner.close()
        if own_store:
            store.close()


def _reconcile(store: JobStore, job: Job, planner: PlannerRunner, now: datetime) -> None:
    """Bring proposals that waited for approval up to date: once a person approved (and the run applied them) or
    rejected them, the ledger says so."""
    from agent.errors import NotFound

    for run_id in store.waiting_runs(job.name):
        try:
            summary = planner.registry.get(run_id)
        except NotFound:
            continue
        if summary.status in ("waiting_approval", "running"):
            continue
        state = planner.state(run_id)
        results = state.get("results") or {}
        store.record_actions(job.name, [(key, results[key]["result"]["status"] if key in results else summary.status)
                                        for key in (state.get("review") or {})], run_id=run_id, now=now)


def _plan(runtime: Runtime, job: Job, report: JobRunReport, fresh: list[Finding], *, apply: bool, store: JobStore,
          planner: PlannerRunner, now: datetime) -> JobRunReport:
    from graphs.planner.run import RunRequest

    if planner.router.is_configured("planner"):
        review = _model_review(planner, job, report, fresh)
        report.dropped = [f.action.idempotency_key for f in fresh if f.action.idempotency_key in review.drop]
        fresh = [f for f in fresh if f.action.idempotency_key not in review.drop]
        report.explanation, report.explained_by = review.explanation, "model"
    else:
        report.explanation = _rules_explanation(job, report, fresh)
    report.findings = fresh
    report.briefs = [f.brief for f in fresh if f.brief is not None]
    if not fresh:
        report.status = "nothing_to_do"
        return report
    if report.briefs and job.write_copy:
        from graphs.optimizer.copy import write_variants

        report.variants = write_variants(runtime, report.briefs, router=planner.router)
    for group in _groups(job, fresh):
        outcome = planner.start(RunRequest(actions=[f.action for f in group], actor=job.identity, apply=apply,
                                           source="job", job=job.name, explanation=report.explanation))
        _merge(report, outcome)
        if apply:
            store.record_actions(job.name, _ledger(outcome), run_id=outcome.run_id, now=now)
    return report


# The worse status of two runs wins in the job's report.
_SEVERITY = ("nothing_to_do", "done", "waiting_approval", "rejected", "denied", "running", "failed")


def _groups(job: Job, fresh: list[Finding]) -> list[list[Finding]]:
    """One planner run for proposals that belong together; for independent ones, pauses go in a run of their own
    so that an approval another proposal needs (re-enabling raises spend) never holds back a protective pause."""
    from graphs.optimizer.detectors import DETECTORS

    if not DETECTORS[job.detector].independent:
        return [fresh]
    pauses = [f for f in fresh if f.action.kind == "set_status" and f.action.status == "PAUSED"]
    others = [f for f in fresh if f not in pauses]
    return [group for group in (pauses, others) if group]


def _merge(report: JobRunReport, outcome: Any) -> None:
    state = outcome.state
    report.run_ids.append(outcome.run_id)
    report.run_status[outcome.run_id] = outcome.status
    report.run_id = report.run_id or outcome.run_id
    report.status = max(report.status, outcome.status, key=_SEVERITY.index)
    report.report = "\n\n".join(filter(None, [report.report, outcome.report]))
    report.approvers = sorted(set(report.approvers) | set(outcome.approvers))
    report.verdicts |= {k: v["verdict"]["decision"] for k, v in (state.get("review") or {}).items()}
    report.results |= {k: v["result"]["status"] for k, v in (state.get("results") or {}).items()}


def _ledger(outcome: Any) -> list[tuple[str, str]]:
    """What each action key of one apply run became, for the job ledger (dry runs settle nothing)."""
    review = outcome.state.get("review") or {}
    results = outcome.state.get("results") or {}
    statuses = []
    for key, entry in review.items():
        decision = entry["verdict"]["decision"]
        if outcome.status == "waiting_approval" and decision != "deny":
            statuses.append((key, "waiting_approval"))
        elif key in results:
            statuses.append((key, results[key]["result"]["status"]))
        else:
            statuses.append((key, "denied" if decision == "deny" else "skipped"))
    return statuses


def _rekey(finding: Finding, job: Job) -> Finding:
    """Prefix the detector's per-day key with the job's name: two jobs never share a key, one job's rerun does."""
    action = finding.action.model_copy(update={"idempotency_key": f"{job.name}:{finding.action.idempotency_key}"})
    return finding.model_copy(update={"action": action})


def _own_pauses(store: JobStore, job: Job) -> dict[tuple[str, str], str]:
    """Ads this job paused and has not re-enabled since (from its ledger), with the identity that paused them."""
    if job.detector != "stock_guard":
        return {}
    latest: dict[tuple[str, str], str] = {}
    for key in store.applied_keys(job.name):
        # <job>:stock_guard:<verb>:<account>:<ad>:<day>
        parts = key.split(":")
        if len(parts) == 6 and parts[1] == "stock_guard":
            latest[(parts[3], parts[4])] = parts[2]
    return {ad: job.identity for ad, verb in latest.items() if verb == "pause"}


def _rules_explanation(job: Job, report: JobRunReport, fresh: list[Finding]) -> str:
    head = (f"Scheduled job {job.name} ({job.detector}) on data up to {report.as_of}: {len(fresh)} proposal"
            f"{'s' if len(fresh) != 1 else ''}")
    if report.settled:
        head += f" ({len(report.settled)} earlier proposals already applied or awaiting approval are not repeated)"
    lines = [head + "."] + [f"- {f.action.describe()}: {f.action.reason}" for f in fresh]
    return "\n".join(lines)


def _model_review(planner: PlannerRunner, job: Job, report: JobRunReport, fresh: list[Finding]) -> JobReview:
    """Ask the planner model to explain (and possibly veto some of) the proposals; it cannot add or alter any."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from agent.models.prompts import load_prompt

    prompt = load_prompt("job_review")
    # The review's model calls are accounted under the job and its data day (there is no planner run yet).
    model = planner.router.chat("planner", run_id=f"job:{job.name}:{report.as_of}", prompt=prompt).bind_tools(
        [JobReview])
    proposals = [{"key": f.action.idempotency_key, "action": f.action.describe(), "reason": f.action.reason,
                  "evidence": {k: str(v) for k, v in f.evidence.items()}} for f in fresh]
    system = prompt.render(job=job.name, detector=job.detector, as_of=report.as_of, mode=report.mode)
    reply: Any = model.invoke([SystemMessage(system), HumanMessage(json.dumps(proposals, ensure_ascii=False))])
    for call in getattr(reply, "tool_calls", None) or []:
        if call.get("name") == "JobReview":
            review = JobReview.model_validate(call.get("args") or {})
            known = {p["key"] for p in proposals}
            return review.model_copy(update={"drop": [k for k in review.drop if k in known]})
    text = reply.content if isinstance(reply.content, str) else ""
    return JobReview(explanation=text.strip() or _rules_explanation(job, report, fresh))


def job_runner(runtime: Runtime, store: JobStore) -> Runner:
    """The scheduler's runner: each slot runs the job in its own mode and reports a summary."""

    def run(job: Job, _slot: datetime) -> RunSummary:
        return run_job(runtime, job, store=store).summary()

    return run


def load_job_file(runtime: Runtime) -> list[Job]:
    """The jobs in force, checked against the policy's service identities when the policy loads."""
    from policies.loader import load_policy

    try:
        policy = load_policy(runtime.settings.policy_file).policy
    except AdpilotError:
        policy = None  # the planner fails closed on a broken policy; the jobs file is still checked on its own
    return list(load_jobs(jobs_path(runtime.settings), policy=policy).jobs)


def preview_jobs(runtime: Runtime) -> list[JobRunReport]:
    """A dry run of every enabled job, as the nightly schedule would run it (for ``adpilot demo``)."""
    return [run_job(runtime, job, apply=False) for job in load_job_file(runtime) if job.enabled]
