"""Scheduled jobs: a YAML file of named detector runs, validated strictly with line-precise errors.

The default file is ``policies/jobs.yaml`` (next to the policy its service identities act under); the
``jobs_file`` setting (``ADPILOT_JOBS_FILE``) points elsewhere. Each job names a cron expression (five
fields, evaluated in the job's timezone), a detector and its parameters, the accounts it looks at, its
mode (``dry_run`` or ``apply``), the service identity it runs as, and what to do about runs missed while
no scheduler was running (``catch_up``). The YAML is read with the policy loader's line-keeping builder,
so every problem is reported as ``file:line: message``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.errors import BadInput
from agent.settings import PACKAGE_ROOT, Settings
from graphs.optimizer.common import DetectorParams
from graphs.optimizer.detectors import DETECTORS
from policies.loader import PolicyIssue, _Builder, _issue, _line_of
from policies.model import Name, Policy, Timezone

DEFAULT_JOBS = PACKAGE_ROOT / "policies" / "jobs.yaml"
# Job names prefix every idempotency key a job writes (at most 128 characters in all).
_JOB_NAME = r"^[a-z0-9][a-z0-9_\-]{0,39}$"

CatchUp = Literal["latest", "all", "skip"]
Mode = Literal["dry_run", "apply"]


class Job(BaseModel):
    """One scheduled job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_JOB_NAME, description="Unique name, e.g. stock-guard (lower case, at most 40).")
    description: str = ""
    cron: str = Field(description="Five-field cron expression, e.g. '15 2 * * *' for 02:15 every night.")
    timezone: Timezone = Field(default="Europe/Berlin", description="The cron expression's timezone.")
    detector: str = Field(description="Which detector runs: " + ", ".join(DETECTORS) + ".")
    params: dict[str, Any] = Field(default_factory=dict, description="The detector's parameters.")
    accounts: list[str] = Field(min_length=1, description="Ad account ids the job looks at.")
    mode: Mode = Field(default="dry_run", description="dry_run proposes and simulates; apply applies what policy "
                                                     "allows (and asks for approval where it says so).")
    identity: Name = Field(description="The service identity the job acts as (an actor of kind service in the "
                                       "policy).")
    catch_up: CatchUp = Field(default="latest", description="Runs missed while no scheduler ran: latest runs the "
                                                           "newest one, all runs each, skip runs none.")
    grace_minutes: int = Field(default=10, ge=0, le=24 * 60,
                               description="A run this late still counts as on time (for catch_up: skip).")
    timeout_minutes: int = Field(default=30, ge=1, le=24 * 60,
                                 description="How long a run may hold the job's lease before it counts as "
                                             "interrupted.")
    max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts for an interrupted run.")
    write_copy: bool = Field(default=True, description="For detectors that brief new copy (creative_refresh, "
                                                      "price_mismatch): have the copywriter write the variants.")
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression (minute hour day month weekday)")
        return value

    @field_validator("detector")
    @classmethod
    def _detector(cls, value: str) -> str:
        if value not in DETECTORS:
            raise ValueError(f"unknown detector {value!r} (known: {', '.join(DETECTORS)})")
        return value

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for account in value:
            if not isinstance(account, str) or not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", account):
                raise ValueError(f"{account!r} is not an account id (quote ids that look like numbers)")
        if len(set(value)) != len(value):
            raise ValueError("an account is listed twice")
        return value

    @model_validator(mode="after")
    def _params(self) -> Job:
        # Checked here too (not only by the loader) so a Job built in code cannot carry bad parameters.
        DETECTORS[self.detector].params.model_validate(self.params)
        return self

    def detector_params(self) -> DetectorParams:
        """The parameters as the detector's typed model."""
        return DETECTORS[self.detector].params.model_validate(self.params)


class JobsFile(BaseModel):
    """A whole jobs file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    jobs: list[Job] = Field(default_factory=list)

    def get(self, name: str) -> Job:
        """The job called ``name``; raises ``BadInput`` naming the known jobs."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise BadInput(f"no job {name!r} (known: {', '.join(j.name for j in self.jobs) or 'none'})")


class JobsLoadError(BadInput):
    """A jobs file that cannot be used; ``issues`` lists every problem in line order."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.message))
        first = str(self.issues[0]) if self.issues else "invalid jobs file"
        more = f" (+{len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first + more)


def jobs_path(settings: Settings) -> Path:
    """The jobs file in force: the ``jobs_file`` setting, else ``policies/jobs.yaml``."""
    return settings.jobs_file or DEFAULT_JOBS


def load_jobs(path: Path, *, policy: Policy | None = None) -> JobsFile:
    """Read and validate the jobs file; with ``policy``, also check each identity is one of its service actors."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise JobsLoadError([PolicyIssue(source, None, f"cannot read the jobs file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise JobsLoadError([PolicyIssue(source, None, f"not UTF-8 text ({exc.reason})")]) from exc
    return parse_jobs(text, source, policy=policy)


def parse_jobs(text: str, source: str, *, policy: Policy | None = None) -> JobsFile:
    """Validate jobs YAML ``text``; ``source`` names it in error messages."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise JobsLoadError([PolicyIssue(source, mark.line + 1 if mark else None,
                                         f"YAML syntax error: {problem}")]) from exc
    finally:
        loader.dispose()
    if root is None or not isinstance(root, yaml.MappingNode):
        raise JobsLoadError([PolicyIssue(source, 1, "the jobs file must be a mapping with schema_version and jobs")])
    builder = _Builder(loader)
    try:
        raw = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise JobsLoadError([PolicyIssue(source, line, str(exc.problem))]) from exc
    if builder.issues:
        raise JobsLoadError([PolicyIssue(source, line, message) for line, message in builder.issues])
    issues = _param_issues(raw, source, builder.lines)
    if issues:
        raise JobsLoadError(issues)
    try:
        jobs = JobsFile.model_validate(raw)
    except ValidationError as exc:
        raise JobsLoadError([_issue(source, builder.lines, err) for err in exc.errors()]) from exc
    issues = [PolicyIssue(source, _line_of(builder.lines, loc), message)
              for loc, message in _cross_checks(jobs, policy)]
    if issues:
        raise JobsLoadError(issues)
    return jobs


def _param_issues(raw: Any, source: str, lines: dict[Any, int]) -> list[PolicyIssue]:
    """Problems in each job's ``params``, located at the parameter's own line (the Job model would report them
    at the job's)."""
    issues: list[PolicyIssue] = []
    jobs = raw.get("jobs") if isinstance(raw, dict) else None
    if not isinstance(jobs, list):
        return issues
    for i, job in enumerate(jobs):
        if not isinstance(job, dict) or job.get("detector") not in DETECTORS:
            continue
        params = job.get("params", {})
        if not isinstance(params, dict):
            continue
        try:
            DETECTORS[job["detector"]].params.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("jobs", i, "params", *err.get("loc", ()))
                issues.append(_issue(source, lines, {**err, "loc": loc}))
    return issues


def _cross_checks(jobs: JobsFile, policy: Policy | None) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: set[str] = set()
    for i, job in enumerate(jobs.jobs):
        if job.name in seen:
            problems.append((("jobs", i, "name"), f"job name {job.name!r} is used twice"))
        seen.add(job.name)
        if policy is None:
            continue
        actor = policy.actors.get(job.identity)
        if actor is None:
            problems.append((("jobs", i, "identity"), f"job {job.name!r}: identity {job.identity!r} is not an actor "
                                                      "in the policy"))
        elif actor.kind != "service":
            problems.append((("jobs", i, "identity"), f"job {job.name!r}: {job.identity!r} is a person; jobs run as "
                                                      "a service identity"))
    return problems
