"""Slash commands: parsed deterministically, no model involved.

``/pause REF``, ``/enable REF``, ``/budget CAMPAIGN +N%|-N%|=AMOUNT [CUR]``, ``/bid ADGROUP +N%|-N%|=AMOUNT [CUR]``,
``/stock-guard``, ``/help``. REF is an id or an exact name (quote names with spaces). Every number is
parsed strictly: NaN, infinities, exponents, negative or absurd amounts and amounts that look like
micros or cents are bad input, reported in one line before anything is planned.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from pydantic import ValidationError

from agent.domain import Action, DomainError, Entity, EntityKind, Money, SetBid, SetBudget, SetStatus
from agent.errors import BadInput
from graphs.planner.resolve import EntityIndex

HELP = """Slash commands (no model needed):
  /pause REF                          pause a campaign, ad group or ad (REF: id or exact 'quoted name')
  /enable REF                         enable it again
  /budget CAMPAIGN +N% | -N% | =AMOUNT [CUR]   change a daily budget, e.g. /budget 'Sommer Sale' +10%
  /bid ADGROUP +N% | -N% | =AMOUNT [CUR]       change an ad group's max CPC, e.g. /bid gag-0003 =0.85 EUR
  /stock-guard                        pause running ads of out-of-stock products, re-enable what it paused
  /help                               this text
Everything is a dry run unless you pass --apply."""

# Percent changes outside this range are rejected as typos before policy is even asked.
MAX_PERCENT = Decimal(1000)
# An absolute amount this many times the current value looks like micros or cents typed as euros.
UNIT_CONFUSION_FACTOR = Decimal(100)

_PERCENT = re.compile(r"^([+-])(\d{1,4}(?:[.,]\d{1,2})?)%$")
_ABSOLUTE = re.compile(r"^=(\d{1,12}(?:[.,]\d{1,6})?)$")


@dataclass
class SlashPlan:
    """What a slash command asks for: actions, or a text to show (help), or a detector to run."""

    actions: list[Action] = field(default_factory=list)
    text: str | None = None
    detector: str | None = None


def parse_and_plan(command: str, index: EntityIndex, *, actor: str,
                   current: Callable[[Entity], Entity]) -> SlashPlan:
    """Turn one slash command into a plan. ``current`` re-reads an entity fresh from its platform."""
    try:
        words = shlex.split(command.strip())
    except ValueError as exc:
        raise BadInput(f"cannot read the command: {exc} (close your quotes)") from None
    if not words or not words[0].startswith("/"):
        raise BadInput("a slash command starts with /; try /help")
    name, args = words[0].lower(), words[1:]
    if name == "/help":
        return SlashPlan(text=HELP)
    if name == "/stock-guard":
        _arity(name, args, 0)
        return SlashPlan(detector="stock_guard")
    if name in ("/pause", "/enable"):
        _arity(name, args, 1)
        entity = current(index.resolve(args[0]))
        status = "PAUSED" if name == "/pause" else "ENABLED"
        verb = "pause" if status == "PAUSED" else "enable"
        return SlashPlan(actions=[SetStatus(target=entity.ref, status=status,
                                            reason=f"{actor} asked to {verb} '{entity.name}' ({name})")])
    if name == "/budget":
        if len(args) not in (2, 3):
            raise BadInput("usage: /budget CAMPAIGN +N%|-N%|=AMOUNT [CUR]")
        entity = current(index.resolve(args[0], kinds=(EntityKind.CAMPAIGN, EntityKind.AD_GROUP)))
        if entity.daily_budget is None:
            raise BadInput(f"{entity.ref.kind} '{entity.name}' has no budget of its own "
                           "(Meta: the budget sits on the campaign or on its ad sets)")
        new = change_amount(entity.daily_budget, args[1], args[2] if len(args) == 3 else None, "budget")
        return SlashPlan(actions=[SetBudget(target=entity.ref, daily_budget=new,
                                            reason=f"{actor}: /budget '{entity.name}' {' '.join(args[1:])} "
                                                   f"({entity.daily_budget} -> {new})")])
    if name == "/bid":
        if len(args) not in (2, 3):
            raise BadInput("usage: /bid ADGROUP +N%|-N%|=AMOUNT [CUR]")
        entity = current(index.resolve(args[0], kinds=(EntityKind.AD_GROUP,)))
        if entity.cpc_bid is None:
            raise BadInput(f"ad group '{entity.name}' has no manual CPC bid to change")
        new = change_amount(entity.cpc_bid, args[1], args[2] if len(args) == 3 else None, "bid")
        return SlashPlan(actions=[SetBid(target=entity.ref, bid_type="cpc", amount=new,
                                         reason=f"{actor}: /bid '{entity.name}' {' '.join(args[1:])} "
                                                f"({entity.cpc_bid} -> {new})")])
    raise BadInput(f"unknown command {name}; try /help")


def _arity(name: str, args: list[str], count: int) -> None:
    if len(args) != count:
        raise BadInput(f"{name} takes {count} argument{'s' if count != 1 else ''}, got {len(args)}; try /help")


def change_amount(current: Money, change: str, currency: str | None, what: str) -> Money:
    """Apply ``+10%``, ``-5%`` or ``=42.50`` to ``current``; strict about numbers, units and currency."""
    if currency is not None and currency.strip().upper() != current.currency:
        raise BadInput(f"wrong currency {currency!r}: this {what} is in {current.currency}")
    text = change.strip().replace(" ", "")
    percent = _PERCENT.match(text)
    absolute = _ABSOLUTE.match(text)
    try:
        if percent:
            value = Decimal(percent.group(2).replace(",", "."))
            if value == 0 or value > MAX_PERCENT:
                raise BadInput(f"a {what} change of {percent.group(1)}{value}% is out of range (0-{MAX_PERCENT}%)")
            factor = (Decimal(100) + value if percent.group(1) == "+" else Decimal(100) - value) / Decimal(100)
            if factor <= 0:
                raise BadInput(f"{change} would take the {what} to zero or below")
            quantum = Decimal(1).scaleb(-current.exponent)
            amount = (current.amount * factor).quantize(quantum, rounding=ROUND_HALF_EVEN)
            return Money(amount=amount, currency=current.currency)
        if absolute:
            amount = Decimal(absolute.group(1).replace(",", "."))
            if amount <= 0:
                raise BadInput(f"a {what} must be above zero")
            if current.amount > 0 and amount >= current.amount * UNIT_CONFUSION_FACTOR:
                raise BadInput(f"{amount} {current.currency} is {amount / current.amount:.0f}x the current {what} "
                               f"of {current}: amounts are in {current.currency}, not micros or cents")
            return Money(amount=amount, currency=current.currency)
    except (InvalidOperation, DomainError) as exc:
        raise BadInput(f"invalid {what} amount {change!r}: {exc}") from None
    except ValidationError as exc:  # too many decimals, absurd amount
        message = str(exc.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise BadInput(f"invalid {what} amount {change!r}: {message}") from None
    raise BadInput(f"cannot read {change!r}: use +N%, -N% or =AMOUNT (e.g. +10%, -5%, =42.50)")
