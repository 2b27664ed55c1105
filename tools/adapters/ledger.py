"""The applied-keys ledger of the real ad platforms: an idempotency key is sent to a platform once.

Google Ads and Meta have no idempotency keys for the mutations adpilot makes, so the adapters keep
their own record: a small SQLite file (``$ADPILOT_HOME/platform_ledger.sqlite``) with one row per
applied action, holding the result that was returned the first time. A second ``apply`` with the
same key returns that result as ``already_applied`` without calling the platform. Only successful
applies are recorded: a failed action may be retried with the same key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from agent.domain import ActionResult

_DDL = """
CREATE TABLE IF NOT EXISTS applied (
    platform TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result_json TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (platform, idempotency_key)
)
"""

LEDGER_FILE = "platform_ledger.sqlite"


class AppliedLedger:
    """Which idempotency keys a platform adapter has already applied (``path=None``: in memory)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False plus a lock: the runtime may call an adapter from a worker thread.
        self._con = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._con:
            self._con.execute(_DDL)

    @classmethod
    def under(cls, home: Path) -> AppliedLedger:
        """The ledger file inside an adpilot home."""
        return cls(home / LEDGER_FILE)

    def get(self, platform: str, key: str) -> ActionResult | None:
        """The result recorded for ``key``, re-labelled ``already_applied``; None if never applied."""
        with self._lock:
            row = self._con.execute(
                "SELECT result_json FROM applied WHERE platform = ? AND idempotency_key = ?", (platform, key)
            ).fetchone()
        if row is None:
            return None
        first = ActionResult.model_validate_json(row[0])
        return first.model_copy(update={"status": "already_applied",
                                        "message": f"already applied: {first.message}".strip()})

    def record(self, platform: str, account_id: str, fingerprint: str, result: ActionResult) -> None:
        """Remember a successful apply (the first result for a key wins)."""
        if result.status != "applied":
            return
        with self._lock, self._con:
            self._con.execute(
                "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?, ?, ?)",
                (platform, result.idempotency_key, account_id, fingerprint,
                 json.dumps(result.model_dump(mode="json")), datetime.now(UTC).isoformat()),
            )

    def close(self) -> None:
        """Close the SQLite connection."""
        self._con.close()
