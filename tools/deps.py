"""What tools get injected: a read-only warehouse, the platform for an account, brand knowledge, settings.

Built once per process from the ``Runtime`` (``ToolDeps.from_runtime``) and handed to every tool
call; tests build their own with whatever parts they want to swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import duckdb

from agent.errors import ConfigError
from agent.settings import Settings

if TYPE_CHECKING:
    from agent.runtime import Runtime
    from tools.adapters.base import AdPlatform
    from tools.brand import BrandKnowledge


class WarehouseWriteAttempt(PermissionError):
    """Something other than one SELECT statement reached the read-only warehouse (a bug, never user input)."""


class ReadOnlyWarehouse:
    """Read access to the warehouse: one SELECT per call, run inside a ``READ ONLY`` transaction.

    Why not a second, read-only connection: DuckDB refuses to open (or ATTACH) a file a second
    time in one process with a different configuration, and the runtime's read-write connection
    (the sandbox writes through it) is always open. So reads go through their own cursor of that
    connection, and three independent layers keep them reads: the tools only ever execute SQL they
    compiled themselves from whitelisted names (values are always ``?`` parameters); this class
    refuses anything DuckDB does not parse as exactly one SELECT; and every statement runs inside
    ``BEGIN TRANSACTION READ ONLY``, so the database itself rejects a write.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _check(self, sql: str) -> None:
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise WarehouseWriteAttempt("the tools' warehouse accepts exactly one SELECT statement")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one SELECT with ``?`` parameters."""
        return self.query_with_columns(sql, params)[1]

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one SELECT as dicts keyed by column name."""
        columns, rows = self.query_with_columns(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def query_with_columns(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one SELECT."""
        self._check(sql)
        # A cursor is a separate connection to the same database: its transaction state cannot leak
        # into the writer's, and concurrent tool calls from different threads each get their own.
        cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION READ ONLY")
            try:
                cur.execute(sql, list(params))
                columns = [d[0] for d in cur.description or []]
                return columns, cur.fetchall()
            finally:
                cur.execute("ROLLBACK")
        finally:
            cur.close()


@dataclass
class ToolDeps:
    """Dependencies of the tools, injected per call and hidden from the model's schema."""

    warehouse: ReadOnlyWarehouse
    platform_for: Callable[[str], AdPlatform]
    settings: Settings
    #: builds the brand knowledge store on first use (opening Chroma costs time most tool calls never need)
    brand_factory: Callable[[], BrandKnowledge] | None = field(default=None, repr=False)

    @cached_property
    def brand(self) -> BrandKnowledge:
        """The brand knowledge store."""
        if self.brand_factory is None:
            raise ConfigError("no brand knowledge store is configured for the tools")
        return self.brand_factory()

    def account_ids(self) -> list[str]:
        """Every ad account the warehouse knows, plus accounts configured for a real platform."""
        known = [r[0] for r in self.warehouse.query("SELECT account_id FROM accounts ORDER BY account_id")]
        return known + sorted(a for a in self.settings.platforms if a not in known)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> ToolDeps:
        """Deps backed by a runtime's warehouse, platforms and settings; cheap enough to build per graph step,
        since the brand store is the runtime's own (opened once, on the first brand search)."""
        return cls(warehouse=ReadOnlyWarehouse(runtime.warehouse), platform_for=runtime.platform_for,
                   settings=runtime.settings, brand_factory=lambda: runtime.brand_knowledge)
