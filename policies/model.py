"""Strict pydantic models of a policy file.

Every model forbids unknown keys and every limit is a finite, non-negative ``Decimal`` given as a
YAML number (a quoted "20" is refused: a policy that silently reads text as numbers is a policy
nobody can review). Cross-references (roles an actor holds, actors a rule names) are checked by
``policies.loader`` so that each problem points at its own line.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from agent.amounts import states_discount, states_price
from agent.domain import CURRENCY_EXPONENTS, MAX_AMOUNT, ActionKind, EntityKind, Status


def _number(value: Any) -> Decimal:
    """A YAML number as a Decimal; text, booleans, NaN and infinities are refused."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    dec = Decimal(value)
    if not dec.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    if dec < 0:
        raise ValueError(f"must not be negative, got {value}")
    return dec


def _max(limit: Decimal, what: str) -> Any:
    def check(value: Decimal) -> Decimal:
        if value > limit:
            raise ValueError(f"{what} {value} is above {limit} (a typo or a unit mix-up?)")
        return value

    return AfterValidator(check)


def _positive(value: Decimal) -> Decimal:
    if value == 0:
        raise ValueError("must be above zero")
    return value


NonNegative = Annotated[Decimal, BeforeValidator(_number)]
# Percentages are written as 20 for 20 %; anything above 1000 % is a typo or a fraction/percent mix-up.
Percent = Annotated[Decimal, BeforeValidator(_number), _max(Decimal(1000), "percentage")]
Amount = Annotated[Decimal, BeforeValidator(_number), _max(MAX_AMOUNT, "amount")]
PositiveAmount = Annotated[Decimal, BeforeValidator(_number), _max(MAX_AMOUNT, "amount"), AfterValidator(_positive)]
Factor = Annotated[Decimal, BeforeValidator(_number), _max(Decimal(1_000_000), "factor"), AfterValidator(_positive)]
Hours = Annotated[Decimal, BeforeValidator(_number), _max(Decimal(24 * 90), "hours"), AfterValidator(_positive)]


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


Count = Annotated[int, BeforeValidator(_strict_int)]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        hint = " (quote ids that look like numbers)" if isinstance(value, int) and not isinstance(value, bool) else ""
        raise ValueError(f"expected text, got {type(value).__name__} {value!r}{hint}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, BeforeValidator(_text)]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


Regex = Annotated[str, BeforeValidator(_text), AfterValidator(_regex)]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from exc
    return value


Timezone = Annotated[str, BeforeValidator(_text), AfterValidator(_timezone)]

_NAME = r"^[a-z0-9][a-z0-9_.@\-]{0,63}$"


def _name(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(_NAME, text):
        raise ValueError(f"{text!r} is not a valid name (lower-case letters, digits, '_', '-', '.', '@')")
    return text


Name = Annotated[str, BeforeValidator(_name)]


def _currency(value: Any) -> str:
    text = _text(value)
    if text not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown or unsupported currency {text!r} (write the ISO code in capitals, e.g. EUR)")
    return text


Currency = Annotated[str, BeforeValidator(_currency)]

# ISO 639-1, the two-letter codes the copy briefs use ("de", "en").
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el
    en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu
    ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na
    nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn
    so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
LANGUAGE_CODES = frozenset(_ISO_639_1.split())


def _language(value: Any) -> str:
    text = _text(value)
    if text not in LANGUAGE_CODES:
        hint = " (write it in lower case)" if text.lower() in LANGUAGE_CODES else " (two letters, e.g. de or en)"
        raise ValueError(f"{text!r} is not an ISO 639-1 language code{hint}")
    return text


Language = Annotated[str, BeforeValidator(_language)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(_Strict):
    """What holders of a role may do."""

    description: str = ""
    actions: list[ActionKind] = Field(default_factory=list, description="Whitelisted action kinds.")
    approve: StrictBool = Field(default=False, description="Holders may approve other actors' runs (four-eyes).")


class ScopeGrant(_Strict):
    """One slice of the ad accounts an actor may touch: accounts, optionally narrowed to campaigns."""

    accounts: list[Text] = Field(min_length=1, description="Ad account ids, e.g. '1234567890' or 'act_1001'.")
    campaign_ids: list[Text] = Field(default_factory=list, description="Only these campaigns (ids).")
    campaign_names: list[Regex] = Field(default_factory=list,
                                        description="Only campaigns whose whole name matches one of these regexes.")

    @property
    def restricts_campaigns(self) -> bool:
        """True when the grant is narrower than whole accounts."""
        return bool(self.campaign_ids or self.campaign_names)


class Actor(_Strict):
    """A person or a service identity known to the policy."""

    description: str = ""
    kind: Literal["person", "service"] = Field(default="person", description="service = a scheduled job identity.")
    roles: list[Name] = Field(min_length=1)
    scope: list[ScopeGrant] = Field(min_length=1, description="Where the actor may act; nothing else.")


class BudgetLimits(_Strict):
    """Limits on ``set_budget``; percentages are relative to the current budget read from the platform."""

    max_change_pct: Percent = Field(description="Largest change of one action, in % of the current budget.")
    max_daily_change_pct: Percent = Field(description="Largest net change per entity within 24 hours, in %.")


class BidLimits(_Strict):
    """Limits on ``set_bid``; percentages are relative to the current bid read from the platform."""

    max_change_pct: Percent
    max_daily_change_pct: Percent
    target_roas_min: PositiveAmount = Field(description="Lowest target ROAS (ratio, 3.5 = 350 %).")
    target_roas_max: PositiveAmount = Field(description="Highest target ROAS (ratio).")

    @model_validator(mode="after")
    def _order(self) -> BidLimits:
        if self.target_roas_min > self.target_roas_max:
            raise ValueError("target_roas_min is above target_roas_max")
        return self


class CurrencyLimits(_Strict):
    """Absolute caps in one currency (main units, e.g. EUR, never cents or micros)."""

    min_daily_budget: Amount
    max_daily_budget: PositiveAmount
    cpc_floor: PositiveAmount
    cpc_ceiling: PositiveAmount
    target_cpa_floor: PositiveAmount
    target_cpa_ceiling: PositiveAmount

    @model_validator(mode="after")
    def _order(self) -> CurrencyLimits:
        for low, high in (("min_daily_budget", "max_daily_budget"), ("cpc_floor", "cpc_ceiling"),
                          ("target_cpa_floor", "target_cpa_ceiling")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} is above {high}")
        return self


class Limits(_Strict):
    """Numeric limits."""

    max_actions_per_run: Count = Field(description="Actions beyond this many in one run are denied.")
    unit_confusion_factor: Factor = Field(
        default=Decimal(100),
        description="A new value this many times larger (or smaller) than the current one is a unit mix-up.")
    budget: BudgetLimits
    bid: BidLimits
    currencies: dict[Currency, CurrencyLimits] = Field(min_length=1, description="Caps per currency.")


class ApprovalCondition(_Strict):
    """When a rule applies; every condition given must hold (AND)."""

    # Empty lists and mappings are refused: a condition that can never hold is a rule that never fires.
    kinds: list[ActionKind] | None = Field(default=None, min_length=1)
    actors: list[Name] | None = Field(default=None, min_length=1)
    roles: list[Name] | None = Field(default=None, min_length=1)
    target_kinds: list[EntityKind] | None = Field(default=None, min_length=1)
    status: Status | None = Field(default=None, description="For set_status / create_ad: the new status.")
    change_pct_above: Percent | None = Field(default=None, description="|change| of a budget or bid above this %.")
    increase_above: dict[Currency, Amount] | None = Field(
        default=None, min_length=1,
        description="Budget or bid increase above this amount per currency; other currencies match.")
    amount_above: dict[Currency, Amount] | None = Field(
        default=None, min_length=1,
        description="New budget or bid above this amount per currency; other currencies match.")
    raises_spend: StrictBool | None = Field(default=None, description="The action can raise spend.")

    @model_validator(mode="after")
    def _not_empty(self) -> ApprovalCondition:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one condition (e.g. kinds: [set_budget])")
        empty = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if empty:
            raise ValueError(f"condition {empty[0]!r} has no value")
        if self.raises_spend is False:
            raise ValueError("raises_spend: false would exempt actions; leave it out instead")
        kinds = set(self.kinds or ())
        numeric = [n for n in ("change_pct_above", "increase_above", "amount_above") if n in self.model_fields_set]
        if numeric and kinds and not kinds & {"set_budget", "set_bid"}:
            raise ValueError(f"{numeric[0]} only applies to set_budget and set_bid, so this rule can never fire")
        if self.target_kinds is not None and EntityKind.ACCOUNT in self.target_kinds:
            raise ValueError("no action targets an account, so this rule can never fire")
        if self.status is not None and kinds and not kinds & {"set_status", "create_ad"}:
            raise ValueError("status only applies to set_status and create_ad, so this rule can never fire")
        return self


class ApprovalRule(_Strict):
    """Actions matching ``when`` need a second actor's approval."""

    id: Name
    description: Text
    when: ApprovalCondition


class Approvals(_Strict):
    """Approval settings and rules."""

    expiry_hours: Hours = Field(description="An approval older than this is void.")
    rules: list[ApprovalRule] = Field(default_factory=list)


class Blackout(_Strict):
    """Whole days (inclusive, in the policy's timezone) on which some action kinds need approval or are denied."""

    id: Name
    description: Text
    start: date
    end: date
    kinds: list[ActionKind] = Field(min_length=1)
    effect: Literal["needs_approval", "deny"] = "needs_approval"


class Reason(BaseModel):
    """Why a verdict went the way it did: a stable code for machines, one sentence for people."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Machine-readable, e.g. budget_change_exceeds_limit.")
    message: str = Field(description="One sentence a campaign manager understands, with the numbers.")


DisclaimerCondition = Literal["always", "price_stated", "discount_stated"]


class Disclaimer(_Strict):
    """A text ads must carry word for word: in some languages, and perhaps only when the ad states a price
    or a discount. A plain string in the policy file is a disclaimer for every ad."""

    text: Text = Field(description="The disclaimer, word for word.")
    languages: list[Language] | None = Field(
        default=None, min_length=1, description="ISO 639-1 codes of the ads that need it; all when left out.")
    when: DisclaimerCondition = Field(
        default="always", description="always; price_stated: the ad states a price or amount; "
                                      "discount_stated: it states a percentage off, a sale or a struck price.")

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"text": _text(value)}
        if not isinstance(value, dict | Disclaimer):
            raise ValueError(f"expected the disclaimer's text or a mapping with text, languages and when, "
                             f"got {type(value).__name__} {value!r}")
        return value

    def covers(self, language: str) -> bool:
        """True when ads in ``language`` need this disclaimer (whatever they say)."""
        return self.languages is None or language.lower() in self.languages

    def applies(self, language: str, text: str) -> bool:
        """True when an ad in ``language`` saying ``text`` (disclaimers left out) must carry this one."""
        if not self.covers(language):
            return False
        if self.when == "price_stated":
            return states_price(text, language.lower())
        if self.when == "discount_stated":
            return states_discount(text, language.lower())
        return True


def _squash_spaces(text: str) -> str:
    return " ".join(text.split())


def disclaimers_for(disclaimers: Iterable[Disclaimer], language: str, text: str) -> list[str]:
    """The texts of ``disclaimers`` an ad in ``language`` whose copy is ``text`` must carry, in policy order.

    The conditions look at what the ad says: the disclaimer texts themselves are removed first, so a
    disclaimer that happens to mention a price or a sale never calls for itself or for another.
    """
    disclaimers = list(disclaimers)
    said = _squash_spaces(text)
    for d in disclaimers:
        said = re.sub(re.escape(_squash_spaces(d.text)), " ", said, flags=re.IGNORECASE)
    return list(dict.fromkeys(_squash_spaces(d.text) for d in disclaimers if d.applies(language, said)))


def disclaimer_texts(disclaimers: Iterable[Disclaimer], language: str) -> list[str]:
    """The texts of every disclaimer ads in ``language`` may have to carry (whatever their condition)."""
    return list(dict.fromkeys(_squash_spaces(d.text) for d in disclaimers if d.covers(language)))


class BrandRules(_Strict):
    """Brand rules shared by the policy gate (create_ad) and the copy guardrails.

    Matching is case-insensitive everywhere: "Garantiert" is as forbidden as "garantiert".
    """

    brand_names: list[Text] = Field(default_factory=list, description="Correct spellings of brands.")
    competitors: list[Text] = Field(default_factory=list, description="Names that must not appear in ads.")
    do_not_say: list[Text] = Field(default_factory=list, description="Terms never to use (case-insensitive).")
    forbidden_claims: list[Regex] = Field(default_factory=list, description="Regexes of claims never to make.")
    required_disclaimers: list[Disclaimer] = Field(
        default_factory=list, description="Disclaimers the copy must carry: plain texts for every ad, or "
                                          "mappings with text, languages and when.")

    def disclaimers_for(self, language: str, text: str) -> list[str]:
        """The disclaimers an ad in ``language`` (ISO 639-1) whose copy is ``text`` must carry."""
        return disclaimers_for(self.required_disclaimers, language, text)

    def disclaimer_texts(self, language: str) -> list[str]:
        """Every disclaimer ads in ``language`` may have to carry: mandated text, not the writer's words."""
        return disclaimer_texts(self.required_disclaimers, language)

    def violations(self, text: str) -> list[Reason]:
        """Every do-not-say term, forbidden claim and competitor name found in ``text``."""
        plain = _plain(text)
        folded = plain.casefold()
        found: list[Reason] = []
        for term in self.do_not_say:
            if _plain(term).casefold() in folded:
                found.append(Reason(code="brand_do_not_say", message=f"the text uses the forbidden term {term!r}"))
        for pattern in self.forbidden_claims:
            match = re.search(pattern, plain, flags=re.IGNORECASE)
            if match:
                found.append(Reason(code="brand_forbidden_claim",
                                    message=f"the text makes a forbidden claim: {match.group(0)!r}"))
        for name in self.competitors:
            if _plain(name).casefold() in folded:
                found.append(Reason(code="brand_competitor", message=f"the text names the competitor {name!r}"))
        return found


def _plain(text: str) -> str:
    """Text as a reader sees it: compatibility-folded (full-width letters) and without invisible format
    characters, so a zero-width space cannot hide "garan\u200btiert" from the check."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")


class Policy(_Strict):
    """A whole policy file."""

    schema_version: Literal[1] = Field(description="Version of this file format.")
    name: Name
    description: str = ""
    timezone: Timezone = Field(description="IANA timezone for days and blackout windows, e.g. Europe/Berlin.")
    roles: dict[Name, Role] = Field(min_length=1)
    actors: dict[Name, Actor] = Field(min_length=1)
    limits: Limits
    approvals: Approvals
    blackouts: list[Blackout] = Field(default_factory=list)
    brand: BrandRules = Field(default_factory=BrandRules)
