"""Opening the SQLite files adpilot keeps under its home (audit log, response cache)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_shared(path: Path, ddl: str) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with ``ddl`` applied, creating the file and its folder.

    The connection may be used from several threads, so the caller serialises its use with a lock;
    WAL lets another process read the file while this one writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(ddl)
    return con
