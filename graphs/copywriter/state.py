"""State of the copywriter subgraph: briefs in, per-batch results merged by reducer, actions out.

Everything that crosses a node boundary is plain JSON (``model_dump(mode="json")``): batch results
go to the per-batch cache and to a checkpointer, and plain data reads back the same in any process.
"""

from __future__ import annotations

import hashlib
import json
import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.domain import EntityKind, EntityRef
from graphs.copywriter.guardrails import Violation
from graphs.copywriter.variants import PlatformName, ProductFacts

MAX_VARIANTS = 10


class Brief(BaseModel):
    """One request for ad copy: which product(s), where the ad goes, how many variants, language, tone."""

    model_config = ConfigDict(frozen=True)

    products: list[ProductFacts] = Field(min_length=1, description="The advertised product first; PIM facts.")
    target: EntityRef = Field(description="The ad group (Google) or ad set (Meta) the new ads go into.")
    platform: PlatformName = Field(description="google (responsive search ad) or meta (link ad).")
    language: str = Field(default="de", pattern=r"^[a-z]{2}$", description="ISO 639-1 code of the copy's language.")
    variants: int = Field(default=3, ge=1, le=MAX_VARIANTS, description="How many distinct variants to write.")
    tone: str | None = Field(default=None, max_length=200, description="Tone of voice, e.g. 'sachlich, freundlich'.")

    def key(self) -> str:
        """A stable hash of everything that shapes the copy (same brief, same key, in any process)."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()[:24]

    @model_validator(mode="after")
    def _target(self) -> Brief:
        if self.target.kind is not EntityKind.AD_GROUP or self.target.platform.value != self.platform:
            raise ValueError(f"a {self.platform} brief targets a {self.platform} ad group / ad set, "
                             f"got {self.target.key()}")
        return self


VariantStatus = Literal["accepted", "dropped"]


class VariantReport(BaseModel):
    """What became of one variant: shipped as an action, or dropped and why."""

    sku: str
    target: str = Field(description="EntityRef key of the ad group.")
    index: int = Field(description="Position of the variant in the brief, from 1.")
    status: VariantStatus
    source: Literal["model", "template"]
    repair_rounds: int = Field(default=0, description="Model rounds spent repairing this variant.")
    repaired: list[Violation] = Field(default_factory=list, description="Violations the repair loop fixed.")
    violations: list[Violation] = Field(default_factory=list, description="Violations left (dropped variants).")
    reason: str | None = Field(default=None, description="Why it was dropped, in one line.")
    headline: str = Field(default="", description="The first headline, for tables.")
    idempotency_key: str | None = Field(default=None, description="Key of the create_ad action (accepted only).")


class BatchResult(BaseModel):
    """The outcome of one batch of briefs: actions (as JSON), reports, notes."""

    batch: int
    key: str = Field(description="Cache key of the batch.")
    actions: list[dict[str, Any]] = Field(default_factory=list, description="CreateAd actions as JSON.")
    reports: list[VariantReport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Per-brief remarks (fewer variants than asked...).")
    model_calls: int = Field(default=0, description="Bulk-model calls this batch made (0 for templates).")


class BatchTask(TypedDict):
    """The payload of one ``Send``: a batch of briefs and the key its result is cached under."""

    batch: int
    key: str
    briefs: list[dict[str, Any]]


class CopyInput(TypedDict):
    """What a caller hands the subgraph."""

    briefs: list[dict[str, Any]]
    """The briefs (``Brief.model_dump(mode="json")``)."""


class CopyState(CopyInput, total=False):
    """The full state of a copy job."""

    batches: list[BatchTask]
    """The briefs cut into batches, each with its cache key."""
    results: Annotated[list[dict[str, Any]], operator.add]
    """One ``BatchResult`` (as JSON) per finished batch, in completion order."""
    actions: list[dict[str, Any]]
    """All accepted ``CreateAd`` actions (as JSON), in brief order."""
    reports: list[dict[str, Any]]
    """Every ``VariantReport`` (as JSON), in brief order."""
    notes: list[str]
    """Per-brief remarks from all batches."""


def batch_key(briefs: list[Brief], fingerprint: str) -> str:
    """Cache key of a batch: its briefs plus everything else that shapes the copy (model, prompt, rules)."""
    payload = json.dumps([[b.key() for b in briefs], fingerprint])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
