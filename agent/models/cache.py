"""The response cache: identical deterministic requests are answered from SQLite under the home.

Only temperature-0 requests are cached (anything else is meant to vary). The key is the SHA-256 of
the canonical JSON of model, sampling parameters, tools and messages, so a rerun of the same job
costs nothing and any change to the request misses. Values are the serialized assistant messages;
the file stays in the user's home next to the warehouse it was computed from.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.sqlite import open_shared

_DDL = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created TEXT NOT NULL,
    body TEXT NOT NULL
);
"""


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same request always serializes to the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(*, model: str, params: dict[str, Any], tools: list[dict[str, Any]] | None,
              messages: list[dict[str, Any]]) -> str:
    """The SHA-256 identifying one request."""
    material = canonical_json({"model": model, "params": params, "tools": tools or [], "messages": messages})
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """A small SQLite key-value store of model responses, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con = open_shared(path, _DDL)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or None."""
        with self._lock:
            row = self._con.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, body: dict[str, Any]) -> None:
        """Store a response (the first answer wins: a deterministic request has one answer)."""
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO responses(key, model, created, body) VALUES (?, ?, ?, ?)",
                              (key, model, datetime.now(UTC).isoformat(), canonical_json(body)))

    def __len__(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._con.close()
