"""The job scheduler: cron slots become job runs that never overlap, survive restarts, and are never lost or
run twice.

State lives in SQLite under the home (``scheduler.sqlite``), so any number of scheduler processes and
``adpilot optimize`` calls share it:

* ``job_cursor`` – up to when each job's cron slots have been planned. A slot is planned exactly once:
  the cursor and the slot rows move in one transaction, and a slot row's key is (job, scheduled_for), so
  planning twice (two schedulers, a restart) inserts nothing new.
* ``job_runs`` – one row per slot: ``pending`` → ``running`` (with an owner and a lease) → ``done`` /
  ``failed``; or ``missed`` when the job's ``catch_up`` policy decided not to run a late slot (recorded, not
  dropped). A job is claimed only while no other run of it holds an unexpired lease, so runs of one job never
  overlap, across processes too.
* A run whose lease expired without finishing (its process died) is put back to ``pending`` with a note and
  retried, up to the job's ``max_attempts``, then marked ``failed``. Retrying is safe because every action a
  job proposes carries a key derived from (job, detector, target, data day): the platform applies a key at
  most once and the job ledger (``job_actions``) drops proposals already applied.

Time comes from an injected clock (aware datetimes), so tests drive the scheduler through days in
milliseconds.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel

from agent.jobs import Job

Clock = Callable[[], datetime]
RunStatus = Literal["pending", "running", "done", "failed", "missed"]
# Ledger statuses that settle a proposal: it is not proposed again by the same job.
SETTLED = ("applied", "already_applied", "waiting_approval")

_DDL = """
CREATE TABLE IF NOT EXISTS job_cursor (
    job TEXT PRIMARY KEY,
    planned_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    job TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until TEXT,
    started_at TEXT,
    finished_at TEXT,
    run_id TEXT,
    outcome TEXT,
    note TEXT,
    PRIMARY KEY (job, scheduled_for)
);
CREATE TABLE IF NOT EXISTS job_actions (
    job TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (job, idempotency_key)
);
"""


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the scheduler works with timezone-aware datetimes only")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class JobRunRecord(BaseModel):
    """One slot of one job, as the state table has it."""

    job: str
    scheduled_for: datetime
    status: RunStatus
    attempts: int
    owner: str | None = None
    lease_until: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None
    outcome: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """What a runner reports back for one job run."""

    outcome: str
    """The planner run's status, or ``nothing_to_do``."""
    run_id: str | None = None
    note: str = ""


Runner = Callable[[Job, datetime], RunSummary]


class JobStore:
    """The scheduler's SQLite state: cursors, runs and the job action ledger."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write happens in an explicit BEGIN IMMEDIATE, which takes SQLite's write lock
        # up front, so two processes claiming the same job serialise instead of both succeeding.
        self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_DDL)

    @classmethod
    def for_home(cls, home: Path) -> JobStore:
        """The store under an adpilot home."""
        return cls(home / "scheduler.sqlite")

    def close(self) -> None:
        """Release the database."""
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------------------------------- planning

    def plan(self, job: Job, now: datetime) -> list[JobRunRecord]:
        """Record every cron slot of ``job`` in (cursor, now]; returns the new rows.

        The first time a job is seen its cursor starts at ``now``: a new job does not backfill history.
        Late slots follow ``job.catch_up``; slots not run are recorded as ``missed`` with the reason.
        """
        with self._write() as db:
            row = db.execute("SELECT planned_until FROM job_cursor WHERE job = ?", [job.name]).fetchone()
            if row is None:
                db.execute("INSERT INTO job_cursor VALUES (?, ?)", [job.name, _iso(now)])
                return []
            since = _parse(row["planned_until"])
            if now <= since:
                return []
            slots = list(_slots(job, since, now))
            decided = _catch_up(job, slots, now)
            created = []
            for slot, (status, note) in zip(slots, decided, strict=True):
                cursor = db.execute(
                    "INSERT OR IGNORE INTO job_runs (job, scheduled_for, status, note) VALUES (?, ?, ?, ?)",
                    [job.name, _iso(slot), status, note])
                if cursor.rowcount:
                    created.append(JobRunRecord(job=job.name, scheduled_for=slot, status=status, attempts=0,
                                                note=note))
            db.execute("UPDATE job_cursor SET planned_until = ? WHERE job = ?", [_iso(now), job.name])
            return created

    def recover(self, job: Job, now: datetime) -> list[JobRunRecord]:
        """Runs of ``job`` whose lease expired unfinished: back to ``pending`` (or ``failed`` after
        ``max_attempts``), each with a note saying what happened."""
        recovered = []
        with self._write() as db:
            stale = db.execute("SELECT * FROM job_runs WHERE job = ? AND status = 'running' AND lease_until < ?",
                               [job.name, _iso(now)]).fetchall()
            for row in stale:
                attempts = row["attempts"]
                if attempts < job.max_attempts:
                    status = "pending"
                    note = (f"attempt {attempts} by {row['owner']} was interrupted (lease expired "
                            f"{row['lease_until']}); retrying")
                else:
                    status = "failed"
                    note = f"interrupted {attempts} times (last by {row['owner']}); giving up on this slot"
                db.execute("UPDATE job_runs SET status = ?, owner = NULL, lease_until = NULL, note = ?, "
                           "finished_at = CASE WHEN ? = 'failed' THEN ? ELSE NULL END "
                           "WHERE job = ? AND scheduled_for = ? AND status = 'running'",
                           [status, note, status, _iso(now), job.name, row["scheduled_for"]])
                recovered.append(self._record({**dict(row), "status": status, "note": note}))
        return recovered

    # ------------------------------------------------------------------------------------------- running

    def claim(self, job: Job, owner: str, now: datetime) -> JobRunRecord | None:
        """Take the oldest pending slot of ``job`` with a lease, unless a run of the job holds a live lease."""
        with self._write() as db:
            busy = db.execute("SELECT 1 FROM job_runs WHERE job = ? AND status = 'running' AND lease_until >= ?",
                              [job.name, _iso(now)]).fetchone()
            if busy:
                return None
            row = db.execute("SELECT * FROM job_runs WHERE job = ? AND status = 'pending' ORDER BY scheduled_for "
                             "LIMIT 1", [job.name]).fetchone()
            if row is None:
                return None
            lease = now + timedelta(minutes=job.timeout_minutes)
            db.execute("UPDATE job_runs SET status = 'running', owner = ?, lease_until = ?, started_at = ?, "
                       "attempts = attempts + 1 WHERE job = ? AND scheduled_for = ?",
                       [owner, _iso(lease), _iso(now), job.name, row["scheduled_for"]])
            return self._record({**dict(row), "status": "running", "owner": owner, "lease_until": _iso(lease),
                                 "started_at": _iso(now), "attempts": row["attempts"] + 1})

    def finish(self, run: JobRunRecord, owner: str, now: datetime, *, status: Literal["done", "failed"],
               outcome: str, run_id: str | None, note: str) -> bool:
        """Close a claimed run; False when this owner no longer holds it (its lease expired and it was retried)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE job_runs SET status = ?, outcome = ?, run_id = ?, note = ?, finished_at = ?, "
                "lease_until = NULL WHERE job = ? AND scheduled_for = ? AND status = 'running' AND owner = ?",
                [status, outcome, run_id, note, _iso(now), run.job, _iso(run.scheduled_for), owner])
            return bool(cursor.rowcount)

    def runs(self, job: str | None = None) -> list[JobRunRecord]:
        """Every recorded slot, oldest first (of one job or all)."""
        sql = "SELECT * FROM job_runs" + (" WHERE job = ?" if job else "") + " ORDER BY scheduled_for, job"
        return [self._record(dict(r)) for r in self._db.execute(sql, [job] if job else []).fetchall()]

    def cursor(self, job: str) -> datetime | None:
        """Up to when ``job``'s slots are planned (None before the scheduler first saw it)."""
        row = self._db.execute("SELECT planned_until FROM job_cursor WHERE job = ?", [job]).fetchone()
        return _parse(row["planned_until"]) if row else None

    @staticmethod
    def _record(row: dict[str, object]) -> JobRunRecord:
        return JobRunRecord.model_validate(row)

    # -------------------------------------------------------------------------------------------- ledger

    def record_actions(self, job: str, statuses: Iterable[tuple[str, str]], *, run_id: str | None,
                       now: datetime) -> None:
        """Remember what became of each proposed action key (latest status wins)."""
        with self._write() as db:
            db.executemany("INSERT INTO job_actions VALUES (?, ?, ?, ?, ?) ON CONFLICT (job, idempotency_key) "
                           "DO UPDATE SET status = excluded.status, run_id = excluded.run_id, "
                           "recorded_at = excluded.recorded_at",
                           [(job, key, status, run_id, _iso(now)) for key, status in statuses])

    def applied_keys(self, job: str) -> list[str]:
        """Keys this job applied, oldest first."""
        return [r["idempotency_key"] for r in self._db.execute(
            "SELECT idempotency_key FROM job_actions WHERE job = ? AND status IN ('applied', 'already_applied') "
            "ORDER BY recorded_at, rowid", [job]).fetchall()]

    def waiting_runs(self, job: str) -> list[str]:
        """Planner runs of this job whose proposals still wait for approval."""
        return [r["run_id"] for r in self._db.execute(
            "SELECT DISTINCT run_id FROM job_actions WHERE job = ? AND status = 'waiting_approval' AND run_id IS NOT "
            "NULL ORDER BY run_id", [job]).fetchall()]

    def settled(self, job: str, keys: Sequence[str]) -> dict[str, str]:
        """The keys among ``keys`` this job already applied or sent for approval, with their status."""
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        found = self._db.execute(f"SELECT idempotency_key, status FROM job_actions WHERE job = ? AND "
                                 f"idempotency_key IN ({marks})", [job, *keys]).fetchall()
        return {r["idempotency_key"]: r["status"] for r in found if r["status"] in SETTLED}


def _slots(job: Job, after: datetime, until: datetime) -> Iterator[datetime]:
    """Cron slots of ``job`` in (after, until], in UTC, computed in the job's timezone (DST-aware)."""
    zone = ZoneInfo(job.timezone)
    it = croniter(job.cron, after.astimezone(zone))
    while True:
        slot = it.get_next(datetime).astimezone(UTC)
        if slot > until:
            return
        yield slot


def _catch_up(job: Job, slots: list[datetime], now: datetime) -> list[tuple[RunStatus, str | None]]:
    """Pending or missed for each slot found in one planning step, by the job's catch-up policy."""
    grace = timedelta(minutes=job.grace_minutes)
    decided: list[tuple[RunStatus, str | None]] = []
    for i, slot in enumerate(slots):
        late = now - slot > grace
        newest = i == len(slots) - 1
        if not late or job.catch_up == "all" or (job.catch_up == "latest" and newest):
            note = f"late by {_minutes(now - slot)} min (catch_up: {job.catch_up})" if late else None
            decided.append(("pending", note))
        elif job.catch_up == "latest":
            decided.append(("missed", f"missed while no scheduler ran; superseded by the newer slot "
                                      f"{_iso(slots[-1])} (catch_up: latest)"))
        else:
            decided.append(("missed", f"missed by {_minutes(now - slot)} min, beyond the "
                                      f"{job.grace_minutes} min grace (catch_up: {job.catch_up})"))
    return decided


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


class TickReport(BaseModel):
    """What one scheduler pass did."""

    at: datetime
    planned: list[JobRunRecord]
    recovered: list[JobRunRecord]
    ran: list[JobRunRecord]


class Scheduler:
    """Plans, claims and runs jobs against a ``JobStore`` with an injected clock."""

    def __init__(self, jobs: Sequence[Job], store: JobStore, runner: Runner, *, clock: Clock | None = None,
                 owner: str | None = None) -> None:
        self.jobs = [job for job in jobs if job.enabled]
        self.store = store
        self.runner = runner
        self.clock = clock or (lambda: datetime.now(UTC))
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def tick(self) -> TickReport:
        """One pass: recover interrupted runs, plan due slots, then run each job's pending slots in order."""
        now = self.clock()
        report = TickReport(at=now, planned=[], recovered=[], ran=[])
        for job in self.jobs:
            report.recovered += self.store.recover(job, now)
            report.planned += self.store.plan(job, now)
        for job in self.jobs:
            while (run := self.store.claim(job, self.owner, self.clock())) is not None:
                report.ran.append(self._run(job, run))
        return report

    def _run(self, job: Job, run: JobRunRecord) -> JobRunRecord:
        try:
            summary = self.runner(job, run.scheduled_for)
        except Exception as exc:  # a job's failure is recorded on its run; the scheduler carries on with the next
            note = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            self.store.finish(run, self.owner, self.clock(), status="failed", outcome="failed", run_id=None,
                              note=note)
            return run.model_copy(update={"status": "failed", "outcome": "failed", "note": note})
        status: Literal["done", "failed"] = "failed" if summary.outcome == "failed" else "done"
        self.store.finish(run, self.owner, self.clock(), status=status, outcome=summary.outcome,
                          run_id=summary.run_id, note=summary.note)
        return run.model_copy(update={"status": status, "outcome": summary.outcome, "run_id": summary.run_id,
                                      "note": summary.note})

    def next_due(self) -> datetime | None:
        """The earliest upcoming slot over all jobs (after each job's cursor)."""
        now = self.clock()
        upcoming = [next(_slots(job, max(self.store.cursor(job.name) or now, now), datetime.max.replace(tzinfo=UTC)))
                    for job in self.jobs]
        return min(upcoming) if upcoming else None

    def run(self, *, until: datetime | None = None, once: bool = False,
            sleep: Callable[[float], None] | None = None) -> list[TickReport]:
        """Tick, sleep until the next slot, repeat; stop after one pass (``once``) or before a slot past ``until``."""
        import time

        sleep = sleep or time.sleep
        reports = [self.tick()]
        while not once:
            due = self.next_due()
            if due is None or (until is not None and due > until):
                break
            wait = (due - self.clock()).total_seconds()
            if wait > 0:
                sleep(wait)
            reports.append(self.tick())
        return reports
