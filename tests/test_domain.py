"""Domain types: Money (with property tests for unit conversions) and actions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.domain import (
    AddNegativeKeyword,
    ChangeSet,
    CreateAd,
    EntityRef,
    GoogleResponsiveSearchAd,
    MetaAdCreative,
    Money,
    SetBid,
    SetBudget,
    SetStatus,
    display_width,
)

G_CAMPAIGN = EntityRef(platform="google", account_id="1234567890", kind="campaign", id="c1")
G_ADGROUP = EntityRef(platform="google", account_id="1234567890", kind="ad_group", id="ag1")
M_ADSET = EntityRef(platform="meta", account_id="act_1", kind="ad_group", id="as1")

cents = st.integers(min_value=0, max_value=10_000_000_000)


@given(cents)
def test_minor_units_round_trip(minor: int) -> None:
    money = Money.from_minor(minor, "EUR")
    assert money.to_minor() == minor
    assert Money.from_micros(money.to_micros(), "EUR") == money
    assert money.to_micros() == minor * 10_000


@given(st.integers(min_value=0, max_value=10**10).map(lambda m: m * 10_000))
def test_micros_round_trip(micros: int) -> None:
    assert Money.from_micros(micros, "EUR").to_micros() == micros


@given(st.integers(min_value=0, max_value=10**8))
def test_zero_decimal_currency(units: int) -> None:
    money = Money.from_minor(units, "JPY")
    assert money.amount == units and money.to_minor() == units


@pytest.mark.parametrize("bad", ["NaN", "nan", "Infinity", "-Infinity", float("nan"), float("inf"), "-1",
                                 "-0.01", "1.234", "abc", "", True, "1e9", 10**12])
def test_money_rejects(bad: object) -> None:
    with pytest.raises((ValidationError, ValueError)):
        Money(amount=bad, currency="EUR")


def test_money_rejects_fraction_of_yen_and_unknown_currency() -> None:
    with pytest.raises(ValidationError):
        Money(amount="1.5", currency="JPY")
    with pytest.raises(ValidationError):
        Money(amount="1", currency="XXX")


def test_micros_that_are_not_whole_cents_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Money.from_micros(1_234_567, "EUR")
    with pytest.raises(ValueError):
        Money.from_micros(1.5, "EUR")  # type: ignore[arg-type]


def test_money_parse_and_arithmetic() -> None:
    assert Money.parse("42,50 €") == Money(amount="42.50", currency="EUR")
    assert Money.parse("EUR 10") == Money.parse("10", default_currency="eur")
    assert str(Money.parse("7.5 EUR").scaled(Decimal("1.1"))) == "8.25 EUR"
    with pytest.raises(ValueError):
        Money.parse("10 EUR") + Money.parse("10 USD")
    with pytest.raises(ValueError):
        Money.parse("10")


def test_display_width_counts_cjk_double_and_umlauts_single() -> None:
    assert display_width("Größe ändern") == 12
    assert display_width("防水ジャケット") == 14
    assert display_width("u\u0308") == 1  # decomposed ü


def test_set_status_cannot_remove() -> None:
    with pytest.raises(ValidationError):
        SetStatus(target=G_CAMPAIGN, status="REMOVED", reason="cleanup")  # type: ignore[arg-type]
    action = SetStatus(target=G_CAMPAIGN, status="PAUSED", reason="out of stock")
    assert action.describe() == "pause campaign c1"


def test_budget_targets() -> None:
    SetBudget(target=M_ADSET, daily_budget=Money.parse("20 EUR"), reason="scale")
    with pytest.raises(ValidationError):
        SetBudget(target=G_ADGROUP, daily_budget=Money.parse("20 EUR"), reason="scale")


def test_bid_shapes() -> None:
    SetBid(target=G_ADGROUP, bid_type="cpc", amount=Money.parse("0.80 EUR"), reason="bid up")
    SetBid(target=G_CAMPAIGN, bid_type="target_roas", target_roas="3.5", reason="tROAS")
    for bad in ({"bid_type": "target_roas", "target_roas": "0"}, {"bid_type": "target_roas", "target_roas": "nan"},
                {"bid_type": "cpc"}, {"bid_type": "cpc", "amount": Money.parse("0 EUR")}):
        with pytest.raises(ValidationError):
            SetBid(target=G_ADGROUP, reason="bid", **bad)


def _rsa(**kw: object) -> GoogleResponsiveSearchAd:
    base = {"headlines": ["Regenjacke Nordkap", "Wasserdicht & leicht", "Jetzt entdecken"],
            "descriptions": ["Leichte Regenjacke für jede Tour.", "Kostenloser Versand ab 50 EUR."],
            "final_url": "https://shop.example.de/p/1"}
    base.update(kw)
    return GoogleResponsiveSearchAd(**base)  # type: ignore[arg-type]


def test_rsa_limits() -> None:
    ad = CreateAd(target=G_ADGROUP, ad=_rsa(), reason="new copy")
    assert ad.status == "PAUSED"
    with pytest.raises(ValidationError):
        _rsa(headlines=["x" * 31, "b", "c"])
    with pytest.raises(ValidationError):
        _rsa(headlines=["a", "b"])
    with pytest.raises(ValidationError):
        _rsa(descriptions=["only one"])
    with pytest.raises(ValidationError):
        _rsa(final_url="javascript:alert(1)")
    with pytest.raises(ValidationError):
        _rsa(path2="sale")
    with pytest.raises(ValidationError):
        _rsa(headlines=["防水ジャケット防水ジャケット防水", "b", "c"])  # 32 wide


def test_create_ad_platform_must_match_format() -> None:
    meta = MetaAdCreative(primary_text="Bleib trocken.", headline="Regenjacke", link="https://shop.example.de/p/1")
    CreateAd(target=M_ADSET, ad=meta, reason="new copy")
    with pytest.raises(ValidationError):
        CreateAd(target=G_ADGROUP, ad=meta, reason="new copy")


def test_negative_keyword_rules() -> None:
    AddNegativeKeyword(target=G_CAMPAIGN, text="gratis", reason="no freebies")
    with pytest.raises(ValidationError):
        AddNegativeKeyword(target=G_CAMPAIGN, text=" ".join(["w"] * 11), reason="too long")
    with pytest.raises(ValidationError):
        AddNegativeKeyword(target=M_ADSET, text="gratis", reason="meta has none")


def test_changeset_discriminated_union_round_trip() -> None:
    cs = ChangeSet(actions=[SetStatus(target=G_CAMPAIGN, status="PAUSED", reason="x" * 3),
                            SetBudget(target=G_CAMPAIGN, daily_budget=Money.parse("5 EUR"), reason="budget")])
    again = ChangeSet.model_validate_json(cs.model_dump_json())
    assert again == cs
    assert [a.kind for a in again.actions] == ["set_status", "set_budget"]
    with pytest.raises(ValidationError):
        ChangeSet(actions=[cs.actions[0], cs.actions[0]])


def test_money_pads_to_the_currency_decimals_without_rounding() -> None:
    assert Money.parse("110 EUR").model_dump(mode="json") == {"amount": "110.00", "currency": "EUR"}
    assert Money(amount="7", currency="JPY").model_dump(mode="json")["amount"] == "7"
    assert Money.parse("110 EUR") == Money.parse("110.00 EUR")
