"""``adpilot policy check`` in-process: ok line and exit 0, file:line errors and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main

DEFAULT = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"


def test_check_default_policy(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["policy", "check", str(DEFAULT), "--home", str(home)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"ok: {DEFAULT} (version ")
    assert out.endswith("4 actors, 7 rules)")


def test_check_without_file_uses_the_policy_in_force(capsys: pytest.CaptureFixture[str], home: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_bytes(DEFAULT.read_bytes())
    monkeypatch.setenv("ADPILOT_POLICY_FILE", str(mine))
    assert main(["policy", "check", "--home", str(home)]) == 0
    assert f"ok: {mine} " in capsys.readouterr().out


def test_check_json(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["policy", "check", str(DEFAULT), "--json", "--home", str(home)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["approvers"] == ["ben"] and len(data["version"]) == 64
    assert data["actors"] == ["anna", "ben", "eve", "svc-optimizer"]


def test_invalid_file_prints_each_problem_with_its_line(capsys: pytest.CaptureFixture[str], home: Path,
                                                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = DEFAULT.read_text().replace("max_change_pct: 20 ", "max_change_pct: -20 ").replace(
        "timezone: Europe/Berlin", "timezone: Nowhere/City")
    bad.write_text(text)
    assert main(["policy", "check", str(bad), "--home", str(home)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    tz_line = text[:text.index("timezone: Nowhere")].count("\n") + 1
    pct_line = text[:text.index("max_change_pct: -20")].count("\n") + 1
    assert lines == [f"{bad}:{tz_line}: timezone: unknown timezone 'Nowhere/City' (use an IANA name such as "
                     f"Europe/Berlin)",
                     f"{bad}:{pct_line}: limits.budget.max_change_pct: must not be negative, got -20"]


def test_invalid_file_json(capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: x\nname: y\n")
    assert main(["policy", "check", str(bad), "--json", "--home", str(home)]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert {"line": 3, "message": "duplicate key 'name' (first defined on line 2)"} in data["errors"]


def test_missing_file(capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["policy", "check", str(missing), "--home", str(home)]) == 2
    assert capsys.readouterr().err.strip() == f"{missing}: cannot read the policy file: No such file or directory"
