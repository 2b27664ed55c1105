"""The run commands in-process: exit codes, one-line errors, approvals, audit verification."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [
    "/budget 'Sommer Sale' +NaN%",
    "/budget 'Sommer Sale' =nan",
    "/budget 'Sommer Sale' =inf",
    "/budget 'Sommer Sale' =Infinity",
    "/budget 'Sommer Sale' =-5",
    "/budget 'Sommer Sale' -100%",
    "/budget 'Sommer Sale' +5000%",
    "/budget 'Sommer Sale' =40000000",        # micros typed as euros
    "/budget 'Sommer Sale' =4000",            # cents typed as euros (100x)
    "/budget 'Sommer Sale' =1e3",
    "/budget 'Sommer Sale' =42.123",          # more decimals than EUR has
    "/budget 'Sommer Sale' +10% USD",         # wrong currency
    "/budget 'Sommer Sale' +10",              # neither % nor =
    "/budget gc-999 +10%",                    # unknown id
    "/pause 'No Such Campaign'",
    "/pause 'Search | Zelte",                 # unclosed quote
    "/bid gc-001 =0.50",                      # a campaign is not an ad group
    "/frobnicate gc-001",
    "/pause",
    "",
    "   ",
])
def test_bad_input_is_one_line_exit_2_and_nothing_applied(command: str, demo_warehouse: Path, home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "ask", command, "--as", "anna", "--apply", "--home", str(home))
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert _run(capsys, "runs", "--json", "--home", str(home))[1].strip() == "[]"


def test_ambiguous_name_lists_candidates(demo_warehouse: Path, home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    con = duckdb.connect(str(demo_warehouse))
    con.execute("UPDATE campaigns SET name = 'Sommer Sale' WHERE campaign_id = 'mc-002'")
    con.close()
    code, _out, err = _run(capsys, "ask", "/pause 'sommer sale'", "--as", "anna", "--home", str(home))
    assert code == 2 and "gc-001" in err and "mc-002" in err and err.count("\n") == 1


def test_ask_approve_show_audit(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "ask", "/budget gc-003 +15%", "--as", "anna", "--apply", "--home", str(home),
                        "--json")
    assert code == 3
    result = json.loads(out)
    assert result["status"] == "waiting_approval" and result["approvers"] == ["ben"]
    run_id = result["run_id"]
    code, _, err = _run(capsys, "approve", run_id, "--as", "anna", "--home", str(home))
    assert code == 3 and "four-eyes" in err
    code, out, _ = _run(capsys, "approve", run_id, "--as", "ben", "--home", str(home))
    assert code == 0 and "applied" in out
    code, out, _ = _run(capsys, "runs", "--json", "--home", str(home))
    assert json.loads(out)[0]["status"] == "done"
    code, out, _ = _run(capsys, "show", run_id, "--json", "--home", str(home))
    assert json.loads(out)["state"]["results"]
    code, out, _ = _run(capsys, "audit", "--run", run_id, "--json", "--home", str(home))
    events = [r["event"] for r in json.loads(out)]
    assert {"run_started", "verdict", "approval_requested", "approval_refused", "approval", "platform_apply",
            "verify", "run_finished"} <= set(events)
    assert _run(capsys, "audit", "--verify", "--home", str(home))[0] == 0


def test_audit_detects_tampering(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "ask", "/pause gad-00008", "--as", "anna", "--apply", "--home", str(home))[0] == 0
    con = sqlite3.connect(str(home / "audit.sqlite"))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    # Someone with file access drops the trigger and edits a record: the chain shows it.
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("UPDATE audit SET payload = replace(payload, 'gad-00008', 'gad-00009') WHERE seq = 1")
    con.commit()
    con.close()
    code, out, _ = _run(capsys, "audit", "--verify", "--home", str(home))
    assert code == 1 and "BROKEN at record 1" in out


def test_reject_and_rollback_cli(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "ask", "/pause gc-014", "--as", "anna", "--apply", "--home", str(home), "--json")
    run_id = json.loads(out)["run_id"]
    code, out, _ = _run(capsys, "rollback", run_id, "--as", "anna", "--apply", "--home", str(home), "--json")
    assert code == 3
    rollback_id = json.loads(out)["run_id"]
    code, out, _ = _run(capsys, "reject", rollback_id, "--as", "ben", "--home", str(home))
    assert code == 3 and "rejected" in out
    code, _, err = _run(capsys, "rollback", "nope", "--as", "anna", "--home", str(home))
    assert code == 2 and "no run" in err


def test_actor_is_required_and_free_text_needs_a_model(demo_warehouse: Path, home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "ask", "/pause gc-014", "--home", str(home))
    assert code == 2 and "--as" in err
    code, _, err = _run(capsys, "ask", "pause everything out of stock", "--as", "anna", "--home", str(home))
    assert code == 2 and "MISTRAL_API_KEY" in err and "/budget" in err
    code, out, _ = _run(capsys, "ask", "/help", "--as", "anna", "--home", str(home))
    assert code == 0 and "/stock-guard" in out


def test_chat_repl_streams_and_survives_bad_lines(demo_warehouse: Path, home: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "chat.json"
    script.write_text(json.dumps([{"content": "Alle Kampagnen laufen wie geplant."}]))
    monkeypatch.setenv("ADPILOT_PLANNER_MODEL", f"scripted:{script}")
    lines = iter(["/budget gc-999 +10%", "/pause gad-00008", "Wie laufen die Kampagnen?"])

    def fake_input(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    code, out, _ = _run(capsys, "chat", "--as", "anna", "--home", str(home))
    assert code == 0
    assert "error: " in out and "gc-999" in out
    assert "Alle Kampagnen laufen wie geplant." in out
    assert "pause ad gad-00008: allowed -> validated" in out
    assert (home / "chat_history").exists()
    # The free-text line is planned with the session's earlier (successful) exchange as context.
    _, runs_out, _ = _run(capsys, "runs", "--json", "--home", str(home))
    free_text = next(r for r in json.loads(runs_out) if r["source"] == "chat")
    _, show_out, _ = _run(capsys, "show", free_text["run_id"], "--json", "--home", str(home))
    contents = [m["content"] for m in json.loads(show_out)["state"]["messages"]]
    assert contents[0] == "/pause gad-00008" and "pause ad gad-00008" in contents[1]
    assert contents[2] == "Wie laufen die Kampagnen?" and "gc-999" not in " ".join(contents)


def test_stock_guard_slash_command(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    con = duckdb.connect(str(demo_warehouse), read_only=True)
    to_pause = {r[0] for r in con.execute("""SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE i.stock = 0 AND a.status = 'ENABLED'""").fetchall()}
    to_enable = {r[0] for r in con.execute("""SELECT a.ad_id FROM ads a JOIN inventory i USING (sku)
        WHERE i.stock > 0 AND a.status = 'PAUSED' AND a.paused_by = 'stock_guard'""").fetchall()}
    con.close()
    code, out, _ = _run(capsys, "ask", "/stock-guard", "--as", "anna", "--home", str(home), "--json")
    assert code == 0
    actions = [v["action"] for v in json.loads(out)["review"].values()]
    assert {a["target"]["id"] for a in actions if a["status"] == "PAUSED"} == to_pause
    assert {a["target"]["id"] for a in actions if a["status"] == "ENABLED"} == to_enable
