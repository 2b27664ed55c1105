"""Shared test setup: a private HOME, no real keys, a dummy Mistral key, cassette filters."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes"

# Before anything imports guardrails: a private HOME whose ~/.guardrailsrc switches telemetry off.
_PRIVATE_HOME = Path(tempfile.mkdtemp(prefix="adpilot-test-home-"))
(_PRIVATE_HOME / ".guardrailsrc").write_text("id=adpilot-tests\nenable_metrics=false\nuse_remote_inferencing=false\n")
os.environ["HOME"] = str(_PRIVATE_HOME)
for _name in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "META_ACCESS_TOKEN", "META_APP_SECRET", "META_APP_ID",
              "GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_REFRESH_TOKEN", "ADPILOT_ACTOR",
              "ADPILOT_PLANNER_MODEL", "ADPILOT_BULK_MODEL", "ADPILOT_CODE_MODEL"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own adpilot home and no keys from the developer's shell."""
    monkeypatch.setenv("ADPILOT_HOME", str(tmp_path / "home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The test's adpilot home (same as ADPILOT_HOME)."""
    return tmp_path / "home"


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    """Scrub secrets on record; replay only (CI passes --record-mode=none)."""
    return {
        "filter_headers": ["authorization", "developer-token", "x-api-key", "cookie", "set-cookie"],
        "filter_query_parameters": ["access_token", "appsecret_proof", "client_secret"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scale-1 demo warehouse per test session (generated once, copied per test)."""
    from tools.warehouse.demo import init_home

    path = tmp_path_factory.mktemp("demo-template") / "warehouse.duckdb"
    init_home(path)
    return path


@pytest.fixture
def demo_warehouse(_demo_template: Path, home: Path) -> Path:
    """A fresh copy of the demo warehouse at ``<home>/warehouse.duckdb``, free to mutate."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "warehouse.duckdb"
    shutil.copy(_demo_template, target)
    return target


@pytest.fixture
def demo_runtime(demo_warehouse: Path, home: Path) -> Iterator:
    """A Runtime on the test's home holding the demo world."""
    from agent.runtime import Runtime
    from agent.settings import load_settings

    runtime = Runtime(load_settings(home=home))
    yield runtime
    runtime.close()
