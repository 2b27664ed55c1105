"""The runtime container: dependencies built once and injected into graphs, tools and commands.

Nothing in adpilot reads a global: commands build a ``Runtime`` from settings and hand it (or the
parts a component needs) down. Tests build one on a temporary home and swap parts freely.
Every part is created lazily, so a command pays only for what it uses.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, NotFound
from agent.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from agent.audit import AuditLog
    from agent.models.router import ModelRouter
    from tools.adapters.base import AdPlatform
    from tools.brand import BrandKnowledge


class Runtime:
    """Lazily built dependencies for one adpilot process."""

    def __init__(self, settings: Settings, **parts: Any) -> None:
        self.settings = settings
        # Explicit parts (tests, embedding apps) win over the lazily built defaults.
        for name, value in parts.items():
            setattr(self, name, value)

    @cached_property
    def warehouse(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB warehouse (schema created if missing)."""
        from tools.warehouse.schema import connect

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return connect(self.settings.warehouse_path)

    @cached_property
    def audit(self) -> AuditLog:
        """The append-only audit log under the home."""
        from agent.audit import AuditLog

        return AuditLog(self.settings.audit_path)

    @cached_property
    def models(self) -> ModelRouter:
        """The model router: one per process, so every graph shares its rate limiter, cache and usage tally."""
        from agent.models.router import ModelRouter

        return ModelRouter(self.settings, audit=self.audit)

    @cached_property
    def brand_knowledge(self) -> BrandKnowledge:
        """The brand knowledge store under the home (one Chroma client per process)."""
        from tools.brand import open_brand_knowledge

        return open_brand_knowledge(self.settings)

    @cached_property
    def sandbox(self) -> AdPlatform:
        """The sandbox platform backed by the warehouse."""
        from tools.adapters.sandbox import SandboxPlatform

        return SandboxPlatform(self.warehouse)

    @cached_property
    def _platform_cache(self) -> dict[str, AdPlatform]:
        return {}

    def platform_for(self, account_id: str) -> AdPlatform:
        """The adapter serving ``account_id``: the sandbox unless settings name a real platform."""
        choice = self.settings.platform_for(account_id)
        if choice == "sandbox":
            return self.sandbox
        if choice not in self._platform_cache:
            self._platform_cache[choice] = self._build_real_platform(choice)
        return self._platform_cache[choice]

    def _build_real_platform(self, choice: str) -> AdPlatform:
        if choice == "google_ads":
            from tools.adapters.google_ads import GoogleAdsPlatform

            return GoogleAdsPlatform.from_settings(self.settings)
        if choice == "meta":
            from tools.adapters.meta import MetaPlatform

            return MetaPlatform.from_settings(self.settings)
        raise ConfigError(f"unknown platform {choice!r} (use sandbox, google_ads or meta)")

    def account_ids(self) -> list[str]:
        """Every account known to the warehouse."""
        return [r[0] for r in self.warehouse.execute("SELECT account_id FROM accounts ORDER BY 1").fetchall()]

    def platform_for_ref_account(self, account_id: str) -> AdPlatform:
        """Like ``platform_for`` but refuses accounts adpilot does not know."""
        if account_id not in self.account_ids() and account_id not in self.settings.platforms:
            raise NotFound(f"unknown account {account_id!r}")
        return self.platform_for(account_id)

    def release_warehouse(self) -> None:
        """Close the warehouse (and the sandbox on it) until next used, so other processes can write.

        DuckDB allows one writer process per file; a long-lived process (the scheduler) releases the
        lock while it waits, and the next access reopens it.
        """
        self.__dict__.pop("sandbox", None)
        connection = self.__dict__.pop("warehouse", None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Release connections."""
        if "warehouse" in self.__dict__:
            self.warehouse.close()
        if "models" in self.__dict__:
            self.models.close()
        if "audit" in self.__dict__:
            self.audit.close()
