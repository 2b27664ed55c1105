"""``adpilot optimize`` and ``adpilot scheduler`` end to end on the demo world: real detectors, real planner runs,
the real policy and the sandbox. An applied job proposes nothing new when rerun."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agent.cli import main
from agent.jobs import DEFAULT_JOBS, JobsLoadError, load_jobs, parse_jobs
from agent.optimize import preview_jobs, run_job
from agent.runtime import Runtime
from agent.scheduler import JobStore, Scheduler
from agent.settings import load_settings
from policies.loader import load_policy

ALL_JOBS = [j.name for j in load_jobs(DEFAULT_JOBS).jobs]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _optimize(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    code, out, err = _run(capsys, "optimize", *args, "--home", str(home), "--json")
    assert not err, err
    return code, json.loads(out)


def _snapshot(home: Path) -> list[Any]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in ("campaigns", "ad_groups", "ads", "sandbox_mutations")]
    finally:
        con.close()


def _query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _targets(report: dict[str, Any]) -> set[str]:
    return {f["action"]["target"]["id"] for f in report["findings"]}


def test_check_lists_the_default_jobs(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = _optimize(capsys, home, "--check")
    assert code == 0
    assert [r["name"] for r in rows] == ALL_JOBS
    assert {r["identity"] for r in rows} == {"svc-optimizer"}


def test_dry_run_of_every_job_changes_nothing(demo_warehouse: Path, home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(home)
    code, reports = _optimize(capsys, home)
    assert code == 0
    assert [r["job"] for r in reports] == ALL_JOBS
    assert all(r["mode"] == "dry_run" and r["status"] == "done" for r in reports)
    assert _snapshot(home) == before
    by_job = {r["job"]: r for r in reports}
    running_oos = {r[0] for r in _query(home, """SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE a.status = 'ENABLED' AND i.stock = 0""")}
    pauses = {f["action"]["target"]["id"] for f in by_job["stock-guard"]["findings"]
              if f["action"]["status"] == "PAUSED"}
    assert pauses == running_oos
    # every proposal went through the policy and the sandbox's validate-only call
    for report in reports:
        keys = {f["action"]["idempotency_key"] for f in report["findings"]}
        assert set(report["verdicts"]) == keys
        assert {report["results"][k] for k in keys if report["verdicts"][k] != "deny"} <= {"validated"}
    refresh = by_job["creative-refresh"]
    assert len(refresh["briefs"]) == len(refresh["findings"]) and refresh["variants"]
    assert all(v["status"] == "PAUSED" for v in refresh["variants"])


def test_an_applied_job_proposes_nothing_new_when_rerun(demo_warehouse: Path, home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, first = _optimize(capsys, home, "--apply")
    assert code == 3  # some proposals wait for a second person's approval (a service raising spend)
    assert all(r["findings"] for r in first), "every default job finds something on the demo world"
    assert {r["status"] for r in first} <= {"done", "waiting_approval"}
    code, again = _optimize(capsys, home, "--apply")
    assert code == 0
    for report in again:
        assert report["status"] == "nothing_to_do" and report["findings"] == [], report["job"]
    # Approving what waited applies it; the jobs still have nothing new to propose afterwards.
    for job in ("stock-guard", "roas-rebalance"):
        (report,) = [r for r in first if r["job"] == job]
        for run_id, status in report["run_status"].items():
            if status == "waiting_approval":
                code, out, err = _run(capsys, "approve", run_id, "--as", "ben", "--home", str(home), "--json")
                assert code == 0 and json.loads(out)["status"] == "done", err
    code, third = _optimize(capsys, home, "stock-guard", "roas-rebalance", "--apply")
    assert code == 0
    assert all(r["status"] == "nothing_to_do" and r["findings"] == [] for r in third)


def test_stock_guard_pauses_at_once_and_reenables_only_its_own_pauses(demo_warehouse: Path, home: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    running_oos = {r[0] for r in _query(home, """SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE a.status = 'ENABLED' AND i.stock = 0""")}
    person_paused = {r[0] for r in _query(home, "SELECT ad_id FROM ads WHERE paused_by = 'anna'")}
    code, (report,) = _optimize(capsys, home, "stock-guard", "--apply")
    assert code == 3 and report["status"] == "waiting_approval"
    # The pauses ran in their own planner run and are applied although the re-enables wait for approval.
    assert len(report["run_ids"]) == 2
    paused = {r[0]: r[1] for r in _query(home, "SELECT ad_id, paused_by FROM ads WHERE status = 'PAUSED'")}
    assert running_oos <= set(paused) and {paused[a] for a in running_oos} == {"svc-optimizer"}

    # A product the job paused comes back, and so does one a person paused.
    own = sorted(running_oos)[0]
    _restock(home, own)
    for ad in person_paused:
        _restock(home, ad)
    code, (again,) = _optimize(capsys, home, "stock-guard", "--apply")
    enables = {f["action"]["target"]["id"] for f in again["findings"] if f["action"]["status"] == "ENABLED"}
    assert own in enables
    assert not enables & person_paused


def _restock(home: Path, ad_id: str) -> None:
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute("UPDATE inventory SET stock = 25 WHERE sku = (SELECT sku FROM ads WHERE ad_id = ?)", [ad_id])
    finally:
        con.close()


def test_bad_input_is_one_line_and_applies_nothing(demo_warehouse: Path, home: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(home)
    code, _, err = _run(capsys, "optimize", "stock-guard", "nope", "--apply", "--home", str(home))
    assert code == 2 and err.count("\n") == 1 and "no job 'nope'" in err
    bad = tmp_path / "jobs.yaml"
    bad.write_text("schema_version: 1\njobs:\n  - name: x\n    cron: '61 * * * *'\n    detector: stock_guard\n"
                   "    accounts: ['1234567890']\n    identity: svc-optimizer\n")
    monkeypatch.setenv("ADPILOT_JOBS_FILE", str(bad))
    code, _, err = _run(capsys, "optimize", "--apply", "--home", str(home))
    assert code == 2 and err.count("\n") == 1 and f"{bad}:4:" in err and "cron" in err
    code, _, err = _run(capsys, "scheduler", "--until", "tomorrow", "--home", str(home))
    assert code == 2 and "--until" in err
    assert _snapshot(home) == before


_JOB = """schema_version: 1
jobs:
  - name: guard
    cron: "15 2 * * *"
    detector: {detector}
    params:
      {param}
    accounts: ["1234567890"]
    identity: {identity}
"""


@pytest.mark.parametrize(("detector", "param", "identity", "line", "message"), [
    ("stock_guard", "pause_marker: stock_guard", "anna", 9, "is a person"),
    ("stock_guard", "pause_marker: stock_guard", "mallory", 9, "not an actor"),
    ("stock_guard", "out_of_stok_max: 3", "svc-optimizer", 7, "unknown key 'out_of_stok_max'"),
    ("cpa_guard", "min_conversions: -1", "svc-optimizer", 7, "greater than or equal to 1"),
    ("nightly_magic", "x: 1", "svc-optimizer", 5, "unknown detector"),
])
def test_jobs_file_errors_point_at_their_line(detector: str, param: str, identity: str, line: int,
                                              message: str) -> None:
    policy = load_policy(Path(__file__).resolve().parent.parent / "policies" / "default.yaml").policy
    with pytest.raises(JobsLoadError) as caught:
        parse_jobs(_JOB.format(detector=detector, param=param, identity=identity), "jobs.yaml", policy=policy)
    assert str(caught.value).startswith(f"jobs.yaml:{line}:"), str(caught.value)
    assert message in str(caught.value)


def test_duplicate_job_names_are_refused() -> None:
    text = _JOB.format(detector="stock_guard", param="pause_marker: stock_guard", identity="svc-optimizer")
    body = text.split("jobs:\n", 1)[1]
    with pytest.raises(JobsLoadError, match=r"jobs.yaml:10: .*used twice"):
        parse_jobs(text + body, "jobs.yaml")


def test_planner_model_reviews_and_may_only_drop(demo_runtime: Runtime) -> None:
    from agent.models.fakes import FunctionChatModel
    from agent.models.router import ModelRouter
    from graphs.planner.run import Runner

    seen: list[str] = []

    def review(messages: list[Any], info: Any) -> dict[str, Any]:
        proposals = json.loads(messages[-1].content)
        seen.extend(p["key"] for p in proposals)
        assert "JobReview" in info.tool_names
        return {"content": "", "tool_calls": [{"name": "JobReview", "args": {
            "explanation": "Drei Kampagnen verfehlen ihr ROAS-Ziel; Budget wandert zu begrenzten Kampagnen.",
            "drop": [proposals[0]["key"], "made-up-key"]}}]}

    router = ModelRouter(demo_runtime.settings, overrides={"planner": FunctionChatModel(review)})
    planner = Runner(demo_runtime, router=router)
    job = load_jobs(DEFAULT_JOBS).get("roas-rebalance")
    report = run_job(demo_runtime, job, apply=False, planner=planner)
    assert report.explained_by == "model" and report.explanation.startswith("Drei Kampagnen")
    assert report.dropped == [seen[0]]
    assert seen[0] not in report.verdicts and set(report.verdicts) == set(seen[1:])
    state = planner.state(report.run_id)
    assert state["explanation"] == report.explanation


def test_scheduled_runs_go_through_the_planner_once_per_slot(demo_runtime: Runtime) -> None:
    from agent.optimize import job_runner

    now = [datetime(2026, 11, 24, 0, 0, tzinfo=UTC)]
    jobs = [load_jobs(DEFAULT_JOBS).get("stock-guard")]
    store = JobStore.for_home(demo_runtime.settings.home)
    scheduler = Scheduler(jobs, store, job_runner(demo_runtime, store), clock=lambda: now[0])
    scheduler.tick()
    now[0] += timedelta(hours=2)  # past 02:15 Berlin
    (run,) = scheduler.tick().ran
    assert run.outcome == "waiting_approval" and run.run_id
    now[0] += timedelta(days=1)
    (second,) = scheduler.tick().ran
    assert second.outcome == "nothing_to_do"
    assert [r.status for r in store.runs()] == ["done", "done"]


def test_preview_is_a_dry_run_of_every_enabled_job(demo_runtime: Runtime) -> None:
    def snapshot() -> list[Any]:
        return [demo_runtime.warehouse.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in ("campaigns", "ad_groups", "ads", "sandbox_mutations")]

    before = snapshot()
    reports = preview_jobs(demo_runtime)
    assert [r.job for r in reports] == ALL_JOBS
    assert all(r.mode == "dry_run" and r.status == "done" and r.findings for r in reports)
    assert snapshot() == before


def test_scheduler_command_once_and_status(demo_warehouse: Path, home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "scheduler", "--once", "--home", str(home), "--json")
    assert code == 0
    (tick,) = json.loads(out)
    assert tick["ran"] == []  # a new home starts watching now; nothing is backfilled
    code, out, _ = _run(capsys, "scheduler", "--status", "--home", str(home), "--json")
    assert code == 0 and json.loads(out) == []
    assert JobStore.for_home(home).cursor("stock-guard") is not None


def test_settings_point_at_another_jobs_file(tmp_path: Path) -> None:
    from agent.jobs import jobs_path

    assert jobs_path(load_settings(home=tmp_path)) == DEFAULT_JOBS
    assert jobs_path(load_settings(home=tmp_path, jobs_file=tmp_path / "j.yaml")) == tmp_path / "j.yaml"


def test_stock_guard_slash_command_runs_the_detector_for_a_person(demo_warehouse: Path, home: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    running_oos = {r[0] for r in _query(home, """SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE a.status = 'ENABLED' AND i.stock = 0""")}
    code, out, err = _run(capsys, "ask", "/stock-guard", "--as", "anna", "--home", str(home), "--json")
    assert code == 0, err
    review = json.loads(out)["review"]
    paused = {v["action"]["target"]["id"] for v in review.values() if v["action"]["status"] == "PAUSED"}
    assert paused == running_oos
