"""Each malformed policy file is a load error pointing at the right line, never a silently dropped rule."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from policies import PolicyLoadError, load_policy, parse_policy

DEFAULT = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
SOURCE = DEFAULT.read_text()


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` (computed from the text, not the loader)."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1


def errors_for(old: str, new: str, marker: str | None = None) -> tuple[list[str], int]:
    """Replace ``old`` by ``new`` in the default policy; the issues and the line ``marker`` is on."""
    assert old in SOURCE, old
    text = SOURCE.replace(old, new, 1)
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text.encode(), "p.yaml")
    return [str(issue) for issue in info.value.issues], line_of(text, marker or new.strip().splitlines()[-1])


MALFORMED = [
    ("negative limit", "max_change_pct: 20 ", "max_change_pct: -20 ", None, "must not be negative"),
    ("number as text", "max_change_pct: 20 ", "max_change_pct: '20' ", None, "expected a number"),
    ("NaN limit", "max_change_pct: 20 ", "max_change_pct: .nan ", None, "finite"),
    ("infinite limit", "max_change_pct: 20 ", "max_change_pct: .inf ", None, "finite"),
    ("percent as a fraction typo", "max_change_pct: 20 ", "max_change_pct: 2000 ", None, "above 1000"),
    ("boolean limit", "max_actions_per_run: 50", "max_actions_per_run: yes", None, "whole number"),
    ("fractional count", "max_actions_per_run: 50", "max_actions_per_run: 5.5", None, "whole number"),
    ("unknown key", "  max_actions_per_run: 50", "  max_actions_per_run: 50\n  max_actoins: 3", None,
     "unknown key 'max_actoins'"),
    ("unknown action kind", "actions: [set_budget, set_status, set_bid, add_negative_keyword]",
     "actions: [set_budget, delete_campaign]", None, "'delete_campaign' is not allowed"),
    ("undefined role", "roles: [optimizer]", "roles: [optimiser]", None, "undefined role 'optimiser'"),
    ("service cannot approve", "roles: [optimizer]", "roles: [optimizer, approver]", None,
     "cannot hold the approving role"),
    ("bad regex", "- '#\\s*1\\b'", "- '(unclosed'", None, "invalid regular expression"),
    ("blackout ends before it starts", "end: 2026-11-30", "end: 2026-11-20", None, "before start"),
    ("impossible date", "end: 2026-11-30", "end: 2026-11-31", None, "day is out of range"),
    ("bad timezone", "timezone: Europe/Berlin", "timezone: Europe/Berlinn", None, "unknown timezone"),
    ("unquoted numeric id", 'accounts: ["act_1001"]', "accounts: [1001]", None, "quote ids"),
    ("duplicate actor", "  eve:\n", "  anna:\n", "  anna:\n    description: Social", "duplicate key 'anna'"),
    ("empty condition list", "when: {kinds: [create_ad], status: ENABLED}", "when: {kinds: [], status: ENABLED}",
     None, "at least 1 item"),
    ("rule without conditions", "when: {actors: [svc-optimizer], raises_spend: true}", "when: {}", None,
     "at least one condition"),
    ("rule that can never fire", "when: {kinds: [set_budget], change_pct_above: 10}",
     "when: {kinds: [add_negative_keyword], change_pct_above: 10}", None, "can never fire"),
    ("account as a target kind", "when: {kinds: [set_status], status: ENABLED, target_kinds: [campaign]}",
     "when: {kinds: [set_status], status: ENABLED, target_kinds: [account]}", None, "can never fire"),
    ("text as a boolean", "approve: true", "approve: 'true'", None, "valid boolean"),
    ("null condition", "when: {kinds: [set_budget], change_pct_above: 10}",
     "when: {kinds: [set_budget], change_pct_above: null}", None, "has no value"),
    ("rule names an unknown actor", "when: {actors: [svc-optimizer], raises_spend: true}",
     "when: {actors: [svc-optimiser], raises_spend: true}", None, "unknown actor 'svc-optimiser'"),
    ("lower-case currency", "    EUR:\n      min_daily_budget", "    eur:\n      min_daily_budget", "    eur:",
     "unsupported currency 'eur'"),
    ("floor above ceiling", "cpc_floor: 0.05", "cpc_floor: 25", "    EUR:", "cpc_floor is above cpc_ceiling"),
    ("approval currency without limits", "increase_above: {EUR: 250}", "increase_above: {USD: 250}", None,
     "currency USD has no limits"),
    ("wrong type for a list", "kinds: [set_budget]\n    effect", "kinds: set_budget\n    effect", "kinds: set_budget",
     "valid list"),
    ("duplicate do-not-say term", "    - bester Preis\n", "    - bester Preis\n    - Bester Preis\n",
     "    - Bester Preis", "listed twice"),
    ("bad YAML", "name: default", "name: default\n\tfoo: 1", "\tfoo", "YAML syntax error"),
    # Required disclaimers: a plain text, or a mapping of text, languages and when.
    ("disclaimer with an unknown key", "      when: price_stated\n", "      when: price_stated\n      lang: de\n",
     None, "unknown key 'lang'"),
    ("disclaimer without text", "- text: Alle Preise inkl. MwSt.\n      languages: [de]",
     "- languages: [de]", None, "missing required key 'text'"),
    ("empty disclaimer text", "- text: Alle Preise inkl. MwSt.", "- text: '  '", None, "must not be empty"),
    ("empty plain disclaimer", "- text: Alle Preise inkl. MwSt.\n      languages: [de]\n      when: price_stated",
     "- ''", None, "must not be empty"),
    ("disclaimer text as a number", "- text: Alle Preise inkl. MwSt.", "- text: 19", None, "expected text"),
    ("disclaimer that is a number", "- text: Alle Preise inkl. MwSt.\n      languages: [de]\n      when: price_stated",
     "- 19", None, "expected the disclaimer's text or a mapping"),
    ("unknown language code", "languages: [de]", "languages: [xx]", None,
     "'xx' is not an ISO 639-1 language code"),
    ("language name instead of a code", "languages: [de]", "languages: [german]", None,
     "'german' is not an ISO 639-1 language code"),
    ("upper-case language code", "languages: [de]", "languages: [DE]", None, "write it in lower case"),
    ("no languages", "languages: [de]", "languages: []", None, "at least 1 item"),
    ("languages as one text", "languages: [de]", "languages: de", None, "valid list"),
    ("language listed twice", "languages: [de]", "languages: [de, de]", None, "language 'de' is listed twice"),
    ("unknown disclaimer condition", "when: price_stated", "when: price_shown", None,
     "'price_shown' is not allowed"),
    ("disclaimer listed twice", "      when: price_stated\n",
     "      when: price_stated\n    - text: alle preise inkl.  MwSt.\n      languages: [de]\n"
     "      when: price_stated\n", "- text: alle preise", "is listed twice"),
]


@pytest.mark.parametrize(("old", "new", "marker", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_file_reports_the_line(old: str, new: str, marker: str | None, message: str) -> None:
    issues, line = errors_for(old, new, marker)
    assert any(issue.startswith(f"p.yaml:{line}: ") and message in issue for issue in issues), (line, issues)


def test_missing_key_points_at_its_parent() -> None:
    issues, line = errors_for("    max_daily_change_pct: 40\n", "", "  bid:")
    assert issues == [f"p.yaml:{line}: limits.bid.max_daily_change_pct: missing required key 'max_daily_change_pct'"]


def test_every_problem_is_reported_in_line_order() -> None:
    text = SOURCE.replace("max_change_pct: 20 ", "max_change_pct: -1 ").replace("cpc_ceiling: 20.00", "cpc_ceiling: x")
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text.encode(), "p.yaml")
    lines = [issue.line for issue in info.value.issues]
    assert len(lines) == 2 and lines == sorted(lines)
    assert str(info.value).startswith(f"p.yaml:{line_of(text, 'max_change_pct: -1')}: ")
    assert str(info.value).endswith("(+1 more)")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "p.yaml:1: the policy file is empty"),
    (b"# only a comment\n", "p.yaml:1: the policy file is empty"),
    (b"- a\n- b\n", "p.yaml:1: the policy must be a mapping"),
    (b"\xff\xfe", "p.yaml: not UTF-8 text"),
    (b"a: 1\n---\nb: 2\n", "p.yaml:2: YAML syntax error"),
])
def test_files_that_are_not_policies(data: bytes, message: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(data, "p.yaml")
    assert str(info.value).startswith(message)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="cannot read the policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_numbers_are_exact_decimals() -> None:
    policy = load_policy(DEFAULT).policy
    assert policy.limits.currencies["EUR"].cpc_floor == Decimal("0.05")
    assert str(policy.limits.currencies["EUR"].cpc_floor) == "0.05"


def test_merge_keys_work_and_are_still_checked() -> None:
    text = SOURCE.replace('''  ben:
    roles: [approver, campaign_manager]
    scope:
      - accounts: ["1234567890", "act_1001"]''', '''  ben:
    roles: [approver, campaign_manager]
    scope: &everywhere
      - accounts: ["1234567890", "act_1001"]''').replace('''  svc-optimizer:
    kind: service
    description: Identity of the overnight optimisation jobs.
    roles: [optimizer]
    scope:
      - accounts: ["1234567890", "act_1001"]''', '''  svc-optimizer:
    kind: service
    description: Identity of the overnight optimisation jobs.
    roles: [optimizer]
    scope: *everywhere''')
    assert "*everywhere" in text
    policy = parse_policy(text.encode(), "p.yaml").policy
    assert policy.actors["svc-optimizer"].scope == policy.actors["ben"].scope


def test_default_policy_loads_with_the_demo_actors() -> None:
    loaded = load_policy(DEFAULT)
    assert set(loaded.policy.actors) == {"anna", "ben", "svc-optimizer", "eve"}
    assert loaded.policy.actors["svc-optimizer"].kind == "service"
    assert loaded.policy.actors["eve"].scope[0].accounts == ["act_1001"]
    assert len(loaded.version) == 64
    assert [(d.languages, d.when) for d in loaded.policy.brand.required_disclaimers] == [
        (["de"], "price_stated"), (["en"], "price_stated"), (["de"], "discount_stated"), (["en"], "discount_stated")]


def test_plain_disclaimers_still_apply_to_every_ad() -> None:
    # The first policy format, a flat list of texts, keeps its meaning: every ad, every language.
    plain = "  required_disclaimers:\n    - Solange der Vorrat reicht.\n    - Alle Preise inkl. MwSt.\n"
    text, replaced = re.subn(r"  required_disclaimers:\n(?: {4}.*\n?)*", plain, SOURCE)
    assert replaced == 1
    brand = parse_policy(text.encode(), "p.yaml").policy.brand
    assert [(d.text, d.languages, d.when) for d in brand.required_disclaimers] == [
        ("Solange der Vorrat reicht.", None, "always"), ("Alle Preise inkl. MwSt.", None, "always")]
    assert brand.disclaimers_for("en", "A jacket.") == ["Solange der Vorrat reicht.", "Alle Preise inkl. MwSt."]
