"""The ``AdPlatform`` protocol every adapter (sandbox, Google Ads, Meta) implements.

Adapters speak domain types only: ``Money`` in, ``Money`` out. Conversions to Google Ads micros and
Meta minor units happen inside the adapters and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agent.domain import Account, Action, ActionResult, Entity, EntityKind, EntityRef, KpiTotals


@runtime_checkable
class AdPlatform(Protocol):
    """What adpilot needs from an ad platform."""

    #: "sandbox", "google_ads" or "meta"
    name: str

    def list_accounts(self) -> list[Account]:
        """Every account this adapter serves."""
        ...

    def list_entities(self, account_id: str, kind: EntityKind, *, parent_id: str | None = None,
                      status: str | None = None) -> list[Entity]:
        """Entities of one kind in an account, optionally under one parent and with one status."""
        ...

    def get_entity(self, ref: EntityRef) -> Entity:
        """The current state of one entity; raises ``agent.errors.NotFound`` when it does not exist."""
        ...

    def read_kpis(self, account_id: str, kind: EntityKind, ids: Sequence[str],
                  window_days: int) -> dict[str, KpiTotals]:
        """Performance totals per entity id over the last ``window_days`` complete days."""
        ...

    def validate(self, actions: Sequence[Action]) -> list[ActionResult]:
        """Validate-only: check each action as the platform would, change nothing. One result per action."""
        ...

    def apply(self, actions: Sequence[Action], *, actor: str | None = None) -> list[ActionResult]:
        """Apply each action; one result per action with before and after values.

        A partial failure applies what it can. An idempotency key already applied returns
        ``already_applied`` and changes nothing. ``actor`` is who applies (recorded where the platform can,
        e.g. the sandbox's ``paused_by``).
        """
        ...

    def read_back(self, refs: Sequence[EntityRef]) -> dict[EntityRef, Entity]:
        """Fresh reads of the given entities (after apply, to verify)."""
        ...
