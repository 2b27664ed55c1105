"""The copy a writer (the bulk model or the template generator) produces, before any guardrail ran.

These are the structured outputs the bulk tier is asked for. They carry no length limits on purpose:
over-long or malformed copy must reach the guardrails, which name the problem so the model can repair
it, instead of failing inside the parser with an error the model never sees.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PlatformName = Literal["google", "meta"]


class RsaCopy(BaseModel):
    """One Google responsive search ad variant."""

    model_config = ConfigDict(frozen=True)

    headlines: list[str] = Field(description="3 to 15 headlines, each at most 30 characters "
                                             "(Chinese, Japanese and Korean characters count two).")
    descriptions: list[str] = Field(description="2 to 4 descriptions, each at most 90 characters.")
    path1: str | None = Field(default=None, description="Optional display path, at most 15 characters.")
    path2: str | None = Field(default=None, description="Optional second display path (only with path1), "
                                                        "at most 15 characters.")

    def fields(self) -> list[tuple[str, str]]:
        """Every text of the ad as (field path, text), e.g. ("headlines[0]", "Trail Runner X2")."""
        out = [(f"headlines[{i}]", h) for i, h in enumerate(self.headlines)]
        out += [(f"descriptions[{i}]", d) for i, d in enumerate(self.descriptions)]
        out += [(name, value) for name, value in (("path1", self.path1), ("path2", self.path2)) if value]
        return out


class MetaCopy(BaseModel):
    """One Meta link-ad variant."""

    model_config = ConfigDict(frozen=True)

    primary_text: str = Field(description="Primary text above the image, at most 125 characters.")
    headline: str = Field(description="Headline below the image, at most 40 characters.")
    description: str = Field(description="Link description, at most 30 characters.")

    def fields(self) -> list[tuple[str, str]]:
        """Every text of the ad as (field path, text)."""
        return [("primary_text", self.primary_text), ("headline", self.headline), ("description", self.description)]


Variant = RsaCopy | MetaCopy


class RsaVariants(BaseModel):
    """Responsive search ad variants for one brief."""

    variants: list[RsaCopy] = Field(description="The ad variants, each clearly different from the others.")


class MetaVariants(BaseModel):
    """Meta link-ad variants for one brief."""

    variants: list[MetaCopy] = Field(description="The ad variants, each clearly different from the others.")


def variants_model(platform: PlatformName) -> type[RsaVariants] | type[MetaVariants]:
    """The structured-output model the bulk tier fills for ``platform``."""
    return RsaVariants if platform == "google" else MetaVariants


class ProductFacts(BaseModel):
    """What the PIM says about a product: the only facts ad copy may state."""

    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    brand: str
    category: str
    price: Decimal
    sale_price: Decimal | None = None
    currency: str = "EUR"
    description: str = ""
    url: str

    @property
    def on_sale(self) -> bool:
        """True when a sale price below the regular price is set."""
        return self.sale_price is not None and self.sale_price < self.price

    @property
    def current_price(self) -> Decimal:
        """What the customer pays today."""
        return self.sale_price if self.on_sale and self.sale_price is not None else self.price

    def discount_percents(self) -> set[int]:
        """The discount as a whole percentage, rounded half-up and rounded down (both are truthful)."""
        if not self.on_sale or self.sale_price is None or self.price <= 0:
            return set()
        exact = (self.price - self.sale_price) / self.price * 100
        return {int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                int(exact.quantize(Decimal(1), rounding=ROUND_DOWN))}

    def display_percent(self) -> int | None:
        """The discount to print in copy: rounded down, so it never overstates the saving."""
        if not self.on_sale or self.sale_price is None or self.price <= 0:
            return None
        return int(((self.price - self.sale_price) / self.price * 100).quantize(Decimal(1), rounding=ROUND_DOWN))
