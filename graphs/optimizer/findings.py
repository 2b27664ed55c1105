"""What a detector returns: a proposed action with its evidence, and (for ad copy problems) a copy brief."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.domain import Action, EntityRef

CopyProblem = Literal["low_ctr", "price_mismatch"]


class CopyBrief(BaseModel):
    """What the copywriter needs to write a replacement for one ad (the detector never writes copy itself)."""

    model_config = ConfigDict(frozen=True)

    ad: EntityRef = Field(description="The ad to replace.")
    ad_group: EntityRef = Field(description="Where the new variants go.")
    sku: str | None = Field(description="The product the ad advertises, if any.")
    problem: CopyProblem = Field(description="Why new copy is needed.")
    note: str = Field(description="One sentence for the copywriter, with the numbers.")
    current_text: list[str] = Field(default_factory=list, description="The texts of the ad being replaced.")


class Finding(BaseModel):
    """One situation a detector found and the action it proposes."""

    model_config = ConfigDict(frozen=True)

    detector: str = Field(description="The detector's name, e.g. stock_guard.")
    action: Action = Field(description="The proposed action; its reason carries the numbers.")
    evidence: dict[str, Decimal] = Field(description="The numbers behind the proposal, by name.")
    brief: CopyBrief | None = Field(default=None, description="For copy problems: the brief for new variants.")

    @property
    def target_id(self) -> str:
        """The id of the entity the action changes."""
        return self.action.target.id
