"""Resolve what a person typed ("'Sommer Sale'", "gc-014") to exactly one entity, or say why not."""

from __future__ import annotations

from collections.abc import Sequence

from agent.domain import Account, Entity, EntityKind, EntityRef
from agent.errors import Ambiguous, NotFound
from tools.adapters.base import AdPlatform

# Which platform's entities a kind covers, in the order they are searched.
SEARCHABLE = (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.AD)


class EntityIndex:
    """Every campaign, ad group and ad the configured platforms report, for lookups by id or exact name."""

    def __init__(self, accounts: Sequence[tuple[Account, AdPlatform]]) -> None:
        self._accounts = list(accounts)
        self._cache: dict[tuple[str, EntityKind], list[Entity]] = {}

    def entities(self, kind: EntityKind) -> list[Entity]:
        """All entities of ``kind`` across accounts."""
        out: list[Entity] = []
        for account, platform in self._accounts:
            key = (account.account_id, kind)
            if key not in self._cache:
                self._cache[key] = platform.list_entities(account.account_id, kind)
            out.extend(self._cache[key])
        return out

    def resolve(self, text: str, kinds: Sequence[EntityKind] = SEARCHABLE) -> Entity:
        """The one entity whose id or exact name (case-insensitive) is ``text``.

        Raises ``NotFound`` (with near names as hints) or ``Ambiguous`` listing every candidate.
        """
        needle = text.strip()
        if not needle:
            raise NotFound("empty reference: give an id or an exact quoted name")
        by_id = [e for kind in kinds for e in self.entities(kind) if e.ref.id == needle]
        if len(by_id) == 1:
            return by_id[0]
        if len(by_id) > 1:
            raise Ambiguous(f"id {needle!r} exists in several accounts: " + _describe(by_id),
                            [e.ref.key() for e in by_id])
        folded = needle.casefold()
        by_name = [e for kind in kinds for e in self.entities(kind) if e.name.casefold() == folded]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise Ambiguous(f"{needle!r} matches {len(by_name)} entities, use an id: " + _describe(by_name),
                            [e.ref.key() for e in by_name])
        near = [e for kind in kinds for e in self.entities(kind) if folded in e.name.casefold()][:5]
        hint = f"; did you mean {_describe(near)}" if near else ""
        raise NotFound(f"no campaign, ad group or ad is called or has the id {needle!r}{hint}")

    def campaign_of(self, entity: Entity, platform: AdPlatform) -> Entity | None:
        """The campaign that contains ``entity`` (itself when it is one)."""
        current: Entity | None = entity
        for _ in range(4):
            if current is None or current.ref.kind is EntityKind.CAMPAIGN:
                return current
            current = platform.get_entity(current.parent) if current.parent else None
        return None


def _describe(entities: Sequence[Entity]) -> str:
    return ", ".join(f"{e.ref.kind} {e.ref.id} '{e.name}' ({e.ref.platform} {e.ref.account_id})" for e in entities)


def ref_text(ref: EntityRef) -> str:
    """A short human form of a reference."""
    return f"{ref.kind} {ref.id}"
