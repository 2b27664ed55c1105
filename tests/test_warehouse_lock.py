"""One writer process at a time: a held warehouse is a clear one-line error, and long-lived processes let go."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.runtime import Runtime


def _other_process_can_write(path: Path) -> bool:
    code = f"import duckdb; duckdb.connect({str(path)!r}).execute('CREATE TABLE IF NOT EXISTS probe (x INT)')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0


def test_busy_warehouse_is_one_line_exit_1(demo_runtime: Runtime, demo_warehouse: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    demo_runtime.warehouse.execute("SELECT 1").fetchall()  # this process now holds the lock
    script = ("import sys; from agent.cli import main; "
              f"sys.exit(main(['ls', 'campaigns', '--home', {str(demo_warehouse.parent)!r}]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: the warehouse") and "in use by another adpilot process" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_release_lets_another_process_write(demo_runtime: Runtime, demo_warehouse: Path) -> None:
    demo_runtime.warehouse.execute("SELECT 1").fetchall()
    assert not _other_process_can_write(demo_warehouse)
    demo_runtime.release_warehouse()
    assert _other_process_can_write(demo_warehouse)
    # and the runtime reopens it on the next use, sandbox included
    assert demo_runtime.sandbox.list_accounts()


def test_cli_still_works_after_release(demo_warehouse: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "accounts", "--home", str(home), "--json"]) == 0
    assert "1234567890" in capsys.readouterr().out
