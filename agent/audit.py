"""The append-only, hash-chained audit log.

Every record stores the SHA-256 of the previous record's hash and its own canonical JSON, so
editing, deleting or reordering any record breaks the chain, which ``verify()`` detects. SQLite
triggers refuse UPDATE and DELETE as a second line of defence. Payloads are redacted before they
are written: no personal data and no secrets ever reach the log.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from agent.privacy import redact
from agent.sqlite import open_shared

GENESIS = "0" * 64

_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    run_id TEXT,
    event TEXT NOT NULL,
    actor TEXT,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_run ON audit(run_id);
CREATE INDEX IF NOT EXISTS audit_event_ts ON audit(event, ts);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


class AuditSink(Protocol):
    """Anything that can take an audit event (the real log, or a list in tests)."""

    def append(self, event: str, payload: dict[str, Any], *, run_id: str | None = None,
               actor: str | None = None) -> AuditRecord:
        """Record one event."""
        ...


class AuditRecord(BaseModel):
    """One entry of the audit log."""

    seq: int
    ts: str
    run_id: str | None
    event: str
    actor: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def canonical(payload: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, no whitespace, Decimals as strings."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=False)


def _chain_hash(prev_hash: str, ts: str, run_id: str | None, event: str, actor: str | None, payload: str) -> str:
    material = "\x1f".join([prev_hash, ts, run_id or "", event, actor or "", payload])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class AuditLog:
    """The audit log in an SQLite file under the home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con = open_shared(path, _DDL)

    def append(self, event: str, payload: dict[str, Any], *, run_id: str | None = None,
               actor: str | None = None) -> AuditRecord:
        """Append one redacted event, chained to the previous record."""
        body = canonical(redact(json.loads(canonical(payload))))
        ts = datetime.now(UTC).isoformat()
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                row = self._con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                digest = _chain_hash(prev, ts, run_id, event, actor, body)
                self._con.execute(
                    "INSERT INTO audit(seq, ts, run_id, event, actor, payload, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (seq, ts, run_id, event, actor, body, prev, digest))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return AuditRecord(seq=seq, ts=ts, run_id=run_id, event=event, actor=actor,
                           payload=json.loads(body), prev_hash=prev, hash=digest)

    def records(self, run_id: str | None = None, event: str | None = None,
                since: datetime | None = None) -> list[AuditRecord]:
        """Records in order, optionally for one run, one event type, and from a point in time on."""
        return list(self._iter(run_id=run_id, event=event, since=since))

    def _iter(self, run_id: str | None = None, event: str | None = None,
              since: datetime | None = None) -> Iterator[AuditRecord]:
        sql = "SELECT seq, ts, run_id, event, actor, payload, prev_hash, hash FROM audit"
        clauses, params = [], []
        if since is not None:
            # Timestamps are UTC ISO strings, so they order as text.
            clauses.append("ts >= ?")
            params.append(since.astimezone(UTC).isoformat())
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        if event is not None:
            clauses.append("event = ?")
            params.append(event)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        for row in self._con.execute(sql + " ORDER BY seq", params):
            yield AuditRecord(seq=row[0], ts=row[1], run_id=row[2], event=row[3], actor=row[4],
                              payload=json.loads(row[5]), prev_hash=row[6], hash=row[7])

    def verify(self) -> int | None:
        """Check the whole chain; the seq of the first broken record, or None when intact."""
        prev = GENESIS
        expected_seq = 1
        for row in self._con.execute(
                "SELECT seq, ts, run_id, event, actor, payload, prev_hash, hash FROM audit ORDER BY seq"):
            seq, ts, run_id, event, actor, body, prev_hash, digest = row
            if seq != expected_seq or prev_hash != prev or _chain_hash(prev, ts, run_id, event, actor,
                                                                         body) != digest:
                return seq
            prev, expected_seq = digest, expected_seq + 1
        return None

    def close(self) -> None:
        """Close the connection."""
        self._con.close()


class MemoryAudit:
    """An in-memory audit sink for tests and library use without a home."""

    def __init__(self) -> None:
        self.events: list[AuditRecord] = []

    def append(self, event: str, payload: dict[str, Any], *, run_id: str | None = None,
               actor: str | None = None) -> AuditRecord:
        """Keep the redacted event in memory."""
        body = json.loads(canonical(redact(json.loads(canonical(payload)))))
        record = AuditRecord(seq=len(self.events) + 1, ts=datetime.now(UTC).isoformat(), run_id=run_id,
                             event=event, actor=actor, payload=body, prev_hash="", hash="")
        self.events.append(record)
        return record
