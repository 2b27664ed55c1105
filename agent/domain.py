"""Domain types shared by every layer: money, entity references, actions and change sets.

This module imports nothing of the project, so every other layer can depend on it. Everything a
language model or a user hands us is parsed into these types at the edge; invalid values never get
further than a pydantic ``ValidationError``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# ISO 4217 minor-unit exponents for the currencies European advertisers bill in. A currency that is
# not listed is rejected rather than guessed: a wrong exponent silently scales a budget by 100.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "DKK": 2, "NOK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "JPY": 0, "KRW": 0, "CAD": 2, "AUD": 2,
}

MICROS_PER_UNIT = 1_000_000
# No real daily budget or bid comes near this; anything above is a unit mix-up (micros or cents
# passed as units) or an attack, and is rejected at the edge.
MAX_AMOUNT = Decimal("100000000")


class DomainError(ValueError):
    """A value that violates a domain rule (raised inside pydantic validators)."""


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise DomainError("a boolean is not an amount")
    if isinstance(value, float):
        # Floats are accepted only through their shortest repr, so 0.1 stays 0.1, not 0.1000000000000000055.
        value = repr(value)
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(f"not a number: {value!r}") from exc
    if not dec.is_finite():
        raise DomainError(f"amount must be finite, got {value!r}")
    return dec


class Money(BaseModel):
    """An amount in an ISO currency. Never negative, never NaN, never more decimals than the currency has."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal = Field(description="Amount in the currency's main unit, e.g. 42.50 for 42.50 EUR.")
    currency: str = Field(description="ISO 4217 code, e.g. EUR.")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        code = str(value).strip().upper()
        if code not in CURRENCY_EXPONENTS:
            raise DomainError(f"unknown or unsupported currency {value!r}")
        return code

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return _to_decimal(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.amount < 0:
            raise DomainError(f"amount must not be negative, got {self.amount}")
        if self.amount > MAX_AMOUNT:
            raise DomainError(f"amount {self.amount} {self.currency} is absurdly large (unit confusion?)")
        exponent = CURRENCY_EXPONENTS[self.currency]
        quantized = self.amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_EVEN)
        if self.amount != quantized:
            raise DomainError(f"{self.amount} has more than {exponent} decimals for {self.currency}")
        # Pad to the currency's decimals (110 EUR -> 110.00) so equal amounts serialise alike; this never
        # rounds (the check above refused anything finer than the minor unit).
        object.__setattr__(self, "amount", quantized)
        return self

    @classmethod
    def of(cls, amount: Any, currency: str) -> Money:
        """Build a Money, raising ``DomainError``-derived errors for bad input."""
        return cls(amount=amount, currency=currency)

    @classmethod
    def parse(cls, text: str, default_currency: str | None = None) -> Money:
        """Parse ``"42.50 EUR"``, ``"EUR 42.50"``, ``"42,50 €"`` or ``"42.5"`` (with a default currency)."""
        cleaned = text.strip().replace("€", " EUR ").replace("$", " USD ").replace("£", " GBP ")
        parts = cleaned.split()
        codes = [p for p in parts if p.isalpha()]
        numbers = [p for p in parts if not p.isalpha()]
        if len(numbers) != 1 or len(codes) > 1:
            raise DomainError(f"cannot read an amount from {text!r}")
        number = numbers[0]
        if "," in number and "." not in number:
            number = number.replace(",", ".")
        currency = codes[0] if codes else default_currency
        if currency is None:
            raise DomainError(f"no currency in {text!r}")
        return cls(amount=number, currency=currency)

    @property
    def exponent(self) -> int:
        """Number of decimals of the currency's minor unit."""
        return CURRENCY_EXPONENTS[self.currency]

    def to_micros(self) -> int:
        """Google Ads units: 1 EUR = 1,000,000 micros."""
        return int(self.amount * MICROS_PER_UNIT)

    @classmethod
    def from_micros(cls, micros: int, currency: str) -> Money:
        """Inverse of ``to_micros``; refuses micros that are not a whole minor unit."""
        if isinstance(micros, bool) or not isinstance(micros, int):
            raise DomainError(f"micros must be an integer, got {micros!r}")
        return cls(amount=Decimal(micros) / MICROS_PER_UNIT, currency=currency)

    def to_minor(self) -> int:
        """Meta units: the currency's minor unit (EUR cents)."""
        return int(self.amount.scaleb(self.exponent))

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """Inverse of ``to_minor``."""
        if isinstance(minor, bool) or not isinstance(minor, int):
            raise DomainError(f"minor units must be an integer, got {minor!r}")
        code = str(currency).upper()
        if code not in CURRENCY_EXPONENTS:
            raise DomainError(f"unknown or unsupported currency {currency!r}")
        return cls(amount=Decimal(minor).scaleb(-CURRENCY_EXPONENTS[code]), currency=code)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise DomainError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def scaled(self, factor: Decimal) -> Money:
        """This amount times ``factor``, rounded half-even to the currency's minor unit."""
        quantum = Decimal(1).scaleb(-self.exponent)
        return Money(amount=(self.amount * factor).quantize(quantum, rounding=ROUND_HALF_EVEN),
                     currency=self.currency)

    def __str__(self) -> str:
        return f"{self.amount:.{self.exponent}f} {self.currency}"


class Platform(StrEnum):
    """The ad platform an entity lives on (independent of whether a sandbox or the real API serves it)."""

    GOOGLE = "google"
    META = "meta"


class EntityKind(StrEnum):
    """Kinds of ad entities. On Meta an ``ad_group`` is an ad set."""

    ACCOUNT = "account"
    CAMPAIGN = "campaign"
    AD_GROUP = "ad_group"
    AD = "ad"
    KEYWORD = "keyword"


class EntityRef(BaseModel):
    """A fully qualified pointer to one entity on one platform account."""

    model_config = ConfigDict(frozen=True)

    platform: Platform = Field(description="google or meta.")
    account_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                            description="Ad account id.")
    kind: EntityKind = Field(description="campaign, ad_group, ad or keyword.")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$", description="Entity id.")

    def key(self) -> str:
        """A stable string form, e.g. ``google/123-456-7890/campaign/c1``."""
        return f"{self.platform}/{self.account_id}/{self.kind}/{self.id}"

    def __str__(self) -> str:
        return self.key()


Status = Literal["ENABLED", "PAUSED"]
"""The only statuses adpilot ever sets. REMOVED / ARCHIVED / DELETED are permanent and never set."""

EntityStatus = Literal["ENABLED", "PAUSED", "REMOVED"]
"""Statuses that can be read back (REMOVED is read-only)."""


def display_width(text: str) -> int:
    """Characters as the ad platforms count them: double-width scripts (CJK) count two, the rest one.

    Combining marks are folded first (NFC), so a decomposed "ü" counts once like a composed one.
    """
    normalized = unicodedata.normalize("NFC", text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in normalized)


def _new_key() -> str:
    return uuid.uuid4().hex


def _check_url(value: str) -> str:
    parsed = urlparse(value)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or "." not in host or not re.fullmatch(r"[a-z]{2,63}",
                                                                                       host.rsplit(".", 1)[-1]):
        raise DomainError(f"not a valid http(s) URL with a host and a top-level domain: {value!r}")
    return value


RSA_HEADLINE_MAX = 30
RSA_DESCRIPTION_MAX = 90
RSA_PATH_MAX = 15


class GoogleResponsiveSearchAd(BaseModel):
    """A Google Ads responsive search ad: 3-15 headlines (<= 30), 2-4 descriptions (<= 90)."""

    model_config = ConfigDict(frozen=True)

    format: Literal["google_rsa"] = Field(default="google_rsa", description="Always google_rsa.")
    headlines: list[str] = Field(min_length=3, max_length=15, description="3 to 15 headlines, 30 characters max.")
    descriptions: list[str] = Field(min_length=2, max_length=4, description="2 to 4 descriptions, 90 characters max.")
    final_url: str = Field(description="Landing page, http(s).")
    path1: str | None = Field(default=None, description="Display path 1, 15 characters max.")
    path2: str | None = Field(default=None, description="Display path 2 (only with path1), 15 characters max.")

    @field_validator("headlines")
    @classmethod
    def _headlines(cls, value: list[str]) -> list[str]:
        return _check_texts(value, RSA_HEADLINE_MAX, "headline")

    @field_validator("descriptions")
    @classmethod
    def _descriptions(cls, value: list[str]) -> list[str]:
        return _check_texts(value, RSA_DESCRIPTION_MAX, "description")

    @field_validator("final_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @model_validator(mode="after")
    def _paths(self) -> Self:
        for name in ("path1", "path2"):
            path = getattr(self, name)
            if path is not None and display_width(path) > RSA_PATH_MAX:
                raise DomainError(f"{name} is longer than {RSA_PATH_MAX} characters")
        if self.path2 and not self.path1:
            raise DomainError("path2 requires path1")
        return self


# Meta's ad text limits are recommendations (the copy guardrails enforce them); these hard caps only
# stop absurd payloads.
META_PRIMARY_TEXT_MAX = 2200
META_HEADLINE_MAX = 255
META_DESCRIPTION_MAX = 255


class MetaAdCreative(BaseModel):
    """A Meta link ad: primary text, headline, description, link."""

    model_config = ConfigDict(frozen=True)

    format: Literal["meta_link"] = Field(default="meta_link", description="Always meta_link (a Meta link ad).")
    primary_text: str = Field(min_length=1, max_length=META_PRIMARY_TEXT_MAX, description="Primary text.")
    headline: str = Field(min_length=1, max_length=META_HEADLINE_MAX, description="Headline.")
    description: str = Field(default="", max_length=META_DESCRIPTION_MAX, description="Link description.")
    link: str = Field(description="Landing page, http(s).")

    @field_validator("link")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


def _check_texts(texts: list[str], limit: int, what: str) -> list[str]:
    for text in texts:
        if not text.strip():
            raise DomainError(f"empty {what}")
        if display_width(text) > limit:
            raise DomainError(f"{what} {text!r} is {display_width(text)} characters, the limit is {limit}")
    if len({t.strip().casefold() for t in texts}) != len(texts):
        raise DomainError(f"duplicate {what}s")
    return texts


AdContent = Annotated[GoogleResponsiveSearchAd | MetaAdCreative, Field(discriminator="format")]


class _ActionBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: EntityRef = Field(description="The entity this action changes (for create_ad: the parent ad group).")
    reason: str = Field(min_length=3, max_length=1000, description="Why, in one sentence a person understands.")
    idempotency_key: str = Field(default_factory=_new_key, min_length=8, max_length=128,
                                 pattern=r"^[A-Za-z0-9_\-:.]+$",
                                 description="Unique per intended change; applying the same key twice is a no-op.")

    def describe(self) -> str:
        """One line for tables and logs."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Hash of what the action does (not why, not its key): equal fingerprints mean equal effects."""
        payload = self.model_dump(mode="json", exclude={"reason", "idempotency_key"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class SetBudget(_ActionBase):
    """Set the daily budget of a campaign (Google campaign budget, Meta CBO) or Meta ad set."""

    kind: Literal["set_budget"] = "set_budget"
    daily_budget: Money = Field(description="The new daily budget.")

    @model_validator(mode="after")
    def _kind(self) -> Self:
        if self.target.kind not in (EntityKind.CAMPAIGN, EntityKind.AD_GROUP):
            raise DomainError("set_budget targets a campaign or an ad set")
        if self.target.kind is EntityKind.AD_GROUP and self.target.platform is not Platform.META:
            raise DomainError("on Google Ads budgets belong to campaigns, not ad groups")
        return self

    def describe(self) -> str:
        return f"set daily budget of {self.target.kind} {self.target.id} to {self.daily_budget}"


class SetStatus(_ActionBase):
    """Pause or enable a campaign, ad group / ad set, ad or keyword. Nothing can remove an entity."""

    kind: Literal["set_status"] = "set_status"
    status: Status = Field(description="ENABLED or PAUSED.")

    @model_validator(mode="after")
    def _kind(self) -> Self:
        if self.target.kind is EntityKind.ACCOUNT:
            raise DomainError("an account's status cannot be changed")
        return self

    def describe(self) -> str:
        verb = "pause" if self.status == "PAUSED" else "enable"
        return f"{verb} {self.target.kind} {self.target.id}"


BidType = Literal["cpc", "target_cpa", "target_roas"]


class SetBid(_ActionBase):
    """Set a manual CPC bid (ad group / keyword) or a target CPA / target ROAS (campaign or ad group)."""

    kind: Literal["set_bid"] = "set_bid"
    bid_type: BidType = Field(description="cpc, target_cpa or target_roas.")
    amount: Money | None = Field(default=None, description="For cpc and target_cpa: the amount.")
    target_roas: Decimal | None = Field(default=None, description="For target_roas: a ratio, 3.5 = 350 %.")

    @field_validator("target_roas", mode="before")
    @classmethod
    def _roas(cls, value: Any) -> Decimal | None:
        return None if value is None else _to_decimal(value)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.target.kind not in (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.KEYWORD):
            raise DomainError("set_bid targets a campaign, ad group or keyword")
        if self.bid_type == "target_roas":
            if self.target_roas is None or self.amount is not None:
                raise DomainError("target_roas needs target_roas and no amount")
            if not Decimal("0.01") <= self.target_roas <= Decimal("1000"):
                raise DomainError("target_roas must be between 0.01 and 1000")
        else:
            if self.amount is None or self.target_roas is not None:
                raise DomainError(f"{self.bid_type} needs an amount and no target_roas")
            if self.amount.amount == 0:
                raise DomainError("a bid must be above zero")
        return self

    def describe(self) -> str:
        value = self.target_roas if self.bid_type == "target_roas" else self.amount
        return f"set {self.bid_type} of {self.target.kind} {self.target.id} to {value}"


class CreateAd(_ActionBase):
    """Create a new ad in an ad group / ad set. New ads start PAUSED unless a person enables them."""

    kind: Literal["create_ad"] = "create_ad"
    ad: AdContent = Field(description="The ad's content.")
    sku: str | None = Field(default=None, max_length=64, description="Product the ad advertises, if any.")
    status: Status = Field(default="PAUSED", description="Initial status; PAUSED by default.")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.target.kind is not EntityKind.AD_GROUP:
            raise DomainError("create_ad targets the parent ad group / ad set")
        expected = "google_rsa" if self.target.platform is Platform.GOOGLE else "meta_link"
        if self.ad.format != expected:
            raise DomainError(f"a {self.target.platform} ad must be {expected}, got {self.ad.format}")
        return self

    def describe(self) -> str:
        first = self.ad.headlines[0] if isinstance(self.ad, GoogleResponsiveSearchAd) else self.ad.headline
        return f"create {self.status.lower()} ad in ad group {self.target.id}: {first!r}"


MatchType = Literal["EXACT", "PHRASE", "BROAD"]


class AddNegativeKeyword(_ActionBase):
    """Add a negative keyword to a Google campaign or ad group."""

    kind: Literal["add_negative_keyword"] = "add_negative_keyword"
    text: str = Field(min_length=1, max_length=80, description="Keyword text, at most 80 characters and 10 words.")
    match_type: MatchType = Field(default="PHRASE", description="EXACT, PHRASE or BROAD.")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.target.platform is not Platform.GOOGLE:
            raise DomainError("negative keywords exist on Google Ads only")
        if self.target.kind not in (EntityKind.CAMPAIGN, EntityKind.AD_GROUP):
            raise DomainError("negative keywords attach to a campaign or ad group")
        if len(self.text.split()) > 10:
            raise DomainError("a keyword has at most 10 words")
        return self

    def describe(self) -> str:
        return f"add negative {self.match_type} keyword {self.text!r} to {self.target.kind} {self.target.id}"


Action = Annotated[SetBudget | SetStatus | SetBid | CreateAd | AddNegativeKeyword, Field(discriminator="kind")]
ActionKind = Literal["set_budget", "set_status", "set_bid", "create_ad", "add_negative_keyword"]
ACTION_KINDS: tuple[str, ...] = ("set_budget", "set_status", "set_bid", "create_ad", "add_negative_keyword")


class ChangeSet(BaseModel):
    """A group of actions planned together, decided on and executed as one run."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=_new_key)
    actions: list[Action] = Field(default_factory=list)
    summary: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _unique_keys(self) -> Self:
        keys = [a.idempotency_key for a in self.actions]
        if len(set(keys)) != len(keys):
            raise DomainError("two actions share an idempotency key")
        return self


class Entity(BaseModel):
    """The current state of one entity as a platform reports it."""

    model_config = ConfigDict(frozen=True)

    ref: EntityRef
    name: str
    status: EntityStatus
    parent: EntityRef | None = None
    daily_budget: Money | None = None
    cpc_bid: Money | None = None
    target_cpa: Money | None = None
    target_roas: Decimal | None = None
    sku: str | None = None
    ad: AdContent | None = None
    # Who last paused it ("stock_guard", an actor id...), when the platform or the sandbox knows.
    paused_by: str | None = None


class Account(BaseModel):
    """An ad account adpilot can reach."""

    model_config = ConfigDict(frozen=True)

    platform: Platform
    account_id: str
    name: str
    currency: str
    timezone: str = "Europe/Berlin"


ResultStatus = Literal["validated", "applied", "already_applied", "failed", "denied", "skipped"]


class ActionResult(BaseModel):
    """What happened to one action on a platform (validate-only or apply)."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    status: ResultStatus
    message: str = ""
    error_code: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    created_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the action is valid (validate) or took effect (apply)."""
        return self.status in ("validated", "applied", "already_applied")


class KpiTotals(BaseModel):
    """Raw performance totals over a window; ratios are derived, None when the denominator is zero."""

    model_config = ConfigDict(frozen=True)

    impressions: int = 0
    clicks: int = 0
    cost: Decimal = Decimal(0)
    conversions: Decimal = Decimal(0)
    conversion_value: Decimal = Decimal(0)
    currency: str = "EUR"

    @property
    def roas(self) -> Decimal | None:
        return self.conversion_value / self.cost if self.cost else None

    @property
    def cpa(self) -> Decimal | None:
        return self.cost / self.conversions if self.conversions else None

    @property
    def ctr(self) -> Decimal | None:
        return Decimal(self.clicks) / self.impressions if self.impressions else None
