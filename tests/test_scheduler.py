"""The scheduler with a controllable clock: each cron slot runs once, runs of one job never overlap, a restart
loses nothing and duplicates nothing, and missed runs follow the job's catch-up policy."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.jobs import Job
from agent.scheduler import JobStore, RunSummary, Scheduler

START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 01:00 in Berlin; the nightly slot is 02:15 Berlin = 01:15 UTC
SLOT = datetime(2026, 11, 24, 1, 15, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Crash(BaseException):
    """Stands in for the process dying mid-run (not an Exception: nothing may catch and record it)."""


def job(name: str = "stock-guard", **changes: object) -> Job:
    fields: dict[str, object] = {"name": name, "cron": "15 2 * * *", "detector": "stock_guard",
                                 "accounts": ["1234567890"], "identity": "svc-optimizer", "mode": "apply"}
    return Job(**{**fields, **changes})


class Recorder:
    """A runner that records each call and can crash or fail on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.crash_next = 0
        self.fail_next = 0

    def __call__(self, j: Job, slot: datetime) -> RunSummary:
        self.calls.append((j.name, slot))
        if self.crash_next:
            self.crash_next -= 1
            raise Crash
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("platform unreachable")
        return RunSummary(outcome="done", run_id=f"run-{len(self.calls)}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "scheduler.sqlite"


def test_each_slot_runs_exactly_once(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    scheduler = Scheduler([job()], JobStore(store_path), runner, clock=clock, owner="a")
    assert scheduler.tick().ran == []  # first sight: the cursor starts now, nothing is backfilled
    clock.now = SLOT + timedelta(minutes=1)
    assert [r.scheduled_for for r in scheduler.tick().ran] == [SLOT]
    clock.advance(minutes=5)
    assert scheduler.tick().ran == []
    clock.now = SLOT + timedelta(days=1, seconds=30)
    scheduler.tick()
    assert runner.calls == [("stock-guard", SLOT), ("stock-guard", SLOT + timedelta(days=1))]
    runs = scheduler.store.runs("stock-guard")
    assert [(r.status, r.attempts, r.run_id) for r in runs] == [("done", 1, "run-1"), ("done", 1, "run-2")]


def test_two_schedulers_never_overlap_one_job(clock: FakeClock, store_path: Path) -> None:
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    calls: list[str] = []
    other: list[Scheduler] = []

    def runner(j: Job, slot: datetime) -> RunSummary:
        active[j.name] += 1
        peak[j.name] = max(peak[j.name], active[j.name])
        calls.append(j.name)
        try:
            # While this run holds the lease, a second scheduler process wakes up and looks at the same jobs.
            clock.advance(minutes=1)
            for second in other:
                second.tick()
        finally:
            active[j.name] -= 1
        return RunSummary(outcome="done")

    # Three nights were missed and catch_up: all queues each, so both processes see pending slots of both jobs.
    jobs = [job(catch_up="all"), job("price-mismatch", detector="price_mismatch", catch_up="all")]
    first = Scheduler(jobs, JobStore(store_path), runner, clock=clock, owner="first")
    second = Scheduler(jobs, JobStore(store_path), runner, clock=clock, owner="second")
    first.tick()
    clock.advance(days=3)
    other.append(second)
    first.tick()
    assert peak == {"stock-guard": 1, "price-mismatch": 1}
    assert Counter(calls) == {"stock-guard": 3, "price-mismatch": 3}  # each slot once, whichever process ran it
    runs = first.store.runs()
    assert [r.status for r in runs] == ["done"] * 6
    assert {r.owner for r in runs} == {"first", "second"}


def test_restart_after_a_crash_loses_nothing_and_duplicates_nothing(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    before = Scheduler([job()], JobStore(store_path), runner, clock=clock, owner="before")
    before.tick()
    clock.now = SLOT + timedelta(minutes=1)
    runner.crash_next = 1
    with pytest.raises(Crash):
        before.tick()
    before.store.close()
    (stuck,) = JobStore(store_path).runs()
    assert stuck.status == "running" and stuck.owner == "before"

    after = Scheduler([job()], JobStore(store_path), runner, clock=clock, owner="after")
    clock.advance(minutes=2)
    assert after.tick().ran == []  # the lease still stands: the crashed run might be alive somewhere
    clock.now = SLOT + timedelta(minutes=32)  # lease (30 min) expired
    report = after.tick()
    (recovered,) = report.recovered
    assert (recovered.note or "").startswith("attempt 1 by before was interrupted")
    assert [r.scheduled_for for r in report.ran] == [SLOT]
    assert runner.calls == [("stock-guard", SLOT), ("stock-guard", SLOT)]
    (run,) = after.store.runs()
    assert (run.status, run.attempts, run.owner) == ("done", 2, "after")
    # The next night runs normally; the crashed slot is not run a third time.
    clock.now = SLOT + timedelta(days=1, minutes=1)
    after.tick()
    assert Counter(slot for _, slot in runner.calls) == {SLOT: 2, SLOT + timedelta(days=1): 1}


def test_a_run_that_keeps_crashing_is_given_up_explicitly(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    j = job(max_attempts=2)
    Scheduler([j], JobStore(store_path), runner, clock=clock).tick()
    clock.now = SLOT
    for _ in range(2):
        runner.crash_next = 1
        with pytest.raises(Crash):
            Scheduler([j], JobStore(store_path), runner, clock=clock).tick()
        clock.advance(minutes=31)
    Scheduler([j], JobStore(store_path), runner, clock=clock).tick()
    (run,) = JobStore(store_path).runs()
    assert run.status == "failed" and "giving up" in (run.note or "")
    assert len(runner.calls) == 2


def test_a_lost_lease_cannot_overwrite_the_retry(clock: FakeClock, store_path: Path) -> None:
    store = JobStore(store_path)
    j = job()
    store.plan(j, START)
    store.plan(j, SLOT)
    run = store.claim(j, "slow", SLOT)
    assert run is not None
    assert store.recover(j, SLOT + timedelta(minutes=31))[0].status == "pending"
    retry = store.claim(j, "fast", SLOT + timedelta(minutes=31))
    assert retry is not None
    assert store.finish(retry, "fast", SLOT + timedelta(minutes=32), status="done", outcome="done", run_id="r2",
                        note="")
    assert not store.finish(run, "slow", SLOT + timedelta(minutes=40), status="done", outcome="done", run_id="r1",
                            note="")
    assert store.runs()[0].run_id == "r2"


def test_planning_twice_creates_nothing_twice(clock: FakeClock, store_path: Path) -> None:
    one, two = JobStore(store_path), JobStore(store_path)
    j = job(catch_up="all")
    one.plan(j, START)
    later = START + timedelta(days=3)
    assert len(one.plan(j, later)) == 3
    assert two.plan(j, later) == []
    assert len(two.runs()) == 3


@pytest.mark.parametrize(("catch_up", "ran", "missed"), [("latest", 1, 2), ("all", 3, 0), ("skip", 0, 3)])
def test_missed_runs_follow_the_catch_up_policy(clock: FakeClock, store_path: Path, catch_up: str, ran: int,
                                                missed: int) -> None:
    runner = Recorder()
    scheduler = Scheduler([job(catch_up=catch_up)], JobStore(store_path), runner, clock=clock)
    scheduler.tick()
    clock.advance(days=3)  # the machine was off for three nights
    scheduler.tick()
    runs = scheduler.store.runs()
    assert len(runs) == 3
    assert Counter(r.status for r in runs) == {k: v for k, v in (("done", ran), ("missed", missed)) if v}
    assert all(r.note for r in runs if r.status == "missed")
    if catch_up == "latest":
        assert [slot for _, slot in runner.calls] == [runs[-1].scheduled_for]
    if catch_up == "all":
        assert [slot for _, slot in runner.calls] == [r.scheduled_for for r in runs]  # oldest first


def test_skip_still_runs_a_slot_within_its_grace(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    scheduler = Scheduler([job(catch_up="skip", grace_minutes=10)], JobStore(store_path), runner, clock=clock)
    scheduler.tick()
    clock.now = SLOT + timedelta(minutes=9)
    scheduler.tick()
    assert [slot for _, slot in runner.calls] == [SLOT]


def test_a_failing_run_is_recorded_and_the_next_night_still_runs(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    scheduler = Scheduler([job()], JobStore(store_path), runner, clock=clock)
    scheduler.tick()
    clock.now = SLOT
    runner.fail_next = 1
    scheduler.tick()
    clock.now = SLOT + timedelta(days=1)
    scheduler.tick()
    runs = scheduler.store.runs()
    assert [r.status for r in runs] == ["failed", "done"]
    assert runs[0].note == "RuntimeError: platform unreachable"


def test_the_loop_sleeps_to_each_slot_and_stops_at_until(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    jobs = [job(), job("weekly", cron="0 3 * * 1", detector="creative_refresh")]
    scheduler = Scheduler(jobs, JobStore(store_path), runner, clock=clock)
    reports = scheduler.run(until=START + timedelta(days=7), sleep=clock.sleep)
    nightly = [slot for name, slot in runner.calls if name == "stock-guard"]
    weekly = [slot for name, slot in runner.calls if name == "weekly"]
    assert nightly == [SLOT + timedelta(days=d) for d in range(7)]
    assert weekly == [datetime(2026, 11, 30, 2, 0, tzinfo=UTC)]  # Monday 03:00 Berlin
    assert clock.now <= START + timedelta(days=7)
    assert all(not r.planned or all(p.status == "pending" for p in r.planned) for r in reports)


def test_cron_follows_the_jobs_timezone_across_daylight_saving(clock: FakeClock, store_path: Path) -> None:
    runner = Recorder()
    clock.now = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    scheduler = Scheduler([job(cron="30 2 * * *")], JobStore(store_path), runner, clock=clock)
    scheduler.run(until=datetime(2026, 3, 31, 12, 0, tzinfo=UTC), sleep=clock.sleep)
    local = [slot.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).strftime("%d %H:%M")
             for _, slot in runner.calls]
    # 02:30 does not exist on 29 March (clocks jump 02:00 → 03:00): that night runs once, at 03:00.
    assert local == ["28 02:30", "29 03:00", "30 02:30", "31 02:30"]
