"""Read a policy YAML file into a ``Policy``, with every problem reported as ``file:line: message``.

The YAML is composed into nodes first so that each value keeps the line it came from; the nodes are
then turned into plain data by hand, which lets us refuse duplicate keys (PyYAML silently keeps
the last one) and read numbers as exact ``Decimal`` values from their source text. Pydantic
validates the shape; the checks that relate one part of the file to another (an actor holding an
undefined role, a rule naming an unknown actor) run afterwards with their own locations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.errors import BadInput
from policies.model import Policy

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class PolicyLoadError(BadInput):
    """A policy file that cannot be used; ``issues`` lists every problem found, in line order."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.message))
        first = str(self.issues[0]) if self.issues else "invalid policy"
        more = f" (+{len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy with the identity of the bytes it came from."""

    policy: Policy
    version: str
    source: str


class _Builder:
    """Turns a composed YAML node tree into plain data, remembering the line of every path."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[Loc, int] = {}
        self.issues: list[tuple[int, str]] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys like SafeLoader does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append((line, "a key must be a plain value, not a list or mapping"))
                continue
            key = self._scalar(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                self.issues.append((line, f"key {key_node.value!r} must be text"))
                continue
            if key in result:
                first = self.lines.get((*loc, key))
                self.issues.append((line, f"duplicate key {key!r} (first defined on line {first})"))
                continue
            self.lines[(*loc, key)] = line
            result[key] = self.build(value_node, (*loc, key))
            # Errors about a key's value point at the key's line, where a reader looks first.
            self.lines[(*loc, key)] = line
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == "tag:yaml.org,2002:float":
            # Exact decimal from the source text: 0.05 must not become 0.05000000000000000277.
            text = node.value.replace("_", "")
            try:
                dec = Decimal(text)
            except InvalidOperation:
                return self.loader.construct_object(node)  # .inf / .nan: rejected later as non-finite
            return dec if dec.is_finite() else float(text)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, yaml.constructor.ConstructorError) as exc:
            # e.g. 2026-11-31: YAML reads it as a date and the calendar refuses it.
            problem = getattr(exc, "problem", None) or str(exc)
            self.issues.append((node.start_mark.line + 1, f"cannot read {node.value!r}: {problem}"))
            return None


def parse_policy(data: bytes, source: str) -> LoadedPolicy:
    """Validate policy ``data`` (the file's bytes); ``source`` names it in error messages."""
    version = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError([PolicyIssue(source, None, f"not UTF-8 text ({exc.reason})")]) from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise PolicyLoadError([PolicyIssue(source, line, f"YAML syntax error: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise PolicyLoadError([PolicyIssue(source, None, f"YAML error: {exc}")]) from exc
    finally:
        loader.dispose()
    if root is None:
        raise PolicyLoadError([PolicyIssue(source, 1, "the policy file is empty")])
    if not isinstance(root, yaml.MappingNode):
        raise PolicyLoadError([PolicyIssue(source, root.start_mark.line + 1, "the policy must be a mapping")])

    builder = _Builder(loader)
    try:
        raw = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PolicyLoadError([PolicyIssue(source, line, str(exc.problem))]) from exc
    issues = [PolicyIssue(source, line, message) for line, message in builder.issues]
    if issues:
        raise PolicyLoadError(issues)

    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyLoadError([_issue(source, builder.lines, err) for err in exc.errors()]) from exc

    issues = [PolicyIssue(source, _line_of(builder.lines, loc), message) for loc, message in _cross_checks(policy)]
    if issues:
        raise PolicyLoadError(issues)
    return LoadedPolicy(policy=policy, version=version, source=source)


def load_policy(path: Path) -> LoadedPolicy:
    """Read and validate the policy file at ``path``; raises ``PolicyLoadError`` listing every problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyLoadError([PolicyIssue(str(path), None, f"cannot read the policy file: {exc.strerror}")]) from exc
    return parse_policy(data, str(path))


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest part of ``loc`` that exists in the file.

    Pydantic inserts entries that are not part of the data path (validator and union tags); those
    are skipped rather than ending the walk.
    """
    best: Loc = ()
    for part in loc:
        candidate = (*best, part)
        if candidate in lines:
            best = candidate
    return lines.get(best, 1)


def _issue(source: str, lines: dict[Loc, int], err: Any) -> PolicyIssue:
    loc: Loc = tuple(err.get("loc", ()))
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif err.get("type") == "missing":
        message = f"missing required key {loc[-1]!r}"
    elif err.get("type") == "literal_error" and "input" in err:
        message = f"{err['input']!r} is not allowed: {message[0].lower()}{message[1:]}"
    where = _path_text(lines, loc)
    return PolicyIssue(source, _line_of(lines, loc), f"{where}: {message}" if where else message)


def _path_text(lines: dict[Loc, int], loc: Loc) -> str:
    """The data path of ``loc`` as a reader writes it, e.g. ``actors.anna.roles[0]``."""
    parts: list[str] = []
    walked: Loc = ()
    for part in loc:
        candidate = (*walked, part)
        # Keep real path components and the final missing/extra key; drop pydantic's own tags.
        if candidate in lines or (part == loc[-1] and part != "[key]"):
            walked = candidate
            parts.append(f"[{part}]" if isinstance(part, int) else ("." if parts else "") + str(part))
    return "".join(parts)


def _cross_checks(policy: Policy) -> list[tuple[Loc, str]]:
    """Problems that relate one part of the policy to another."""
    problems: list[tuple[Loc, str]] = []
    approving = {name for name, role in policy.roles.items() if role.approve}
    for actor_name, actor in policy.actors.items():
        for i, role in enumerate(actor.roles):
            loc: Loc = ("actors", actor_name, "roles", i)
            if role not in policy.roles:
                problems.append((loc, f"actor {actor_name!r} holds undefined role {role!r}"))
            elif actor.kind == "service" and role in approving:
                problems.append((loc, f"service identity {actor_name!r} cannot hold the approving role {role!r}"))
        problems += _duplicates(("actors", actor_name, "roles"), actor.roles, "role")
    for role_name, role in policy.roles.items():
        problems += _duplicates(("roles", role_name, "actions"), role.actions, "action kind")
    for field in ("brand_names", "competitors", "do_not_say", "forbidden_claims"):
        problems += _duplicates(("brand", field), getattr(policy.brand, field), field.replace("_", " ").rstrip("s"))
    problems += _disclaimer_checks(policy)
    currencies = set(policy.limits.currencies)
    seen_rules: dict[str, int] = {}
    for i, rule in enumerate(policy.approvals.rules):
        base: Loc = ("approvals", "rules", i)
        if rule.id in seen_rules:
            problems.append(((*base, "id"), f"rule id {rule.id!r} is used twice"))
        seen_rules[rule.id] = i
        when = rule.when
        for j, name in enumerate(when.actors or []):
            if name not in policy.actors:
                problems.append(((*base, "when", "actors", j), f"rule {rule.id!r} names unknown actor {name!r}"))
        for j, name in enumerate(when.roles or []):
            if name not in policy.roles:
                problems.append(((*base, "when", "roles", j), f"rule {rule.id!r} names undefined role {name!r}"))
        for field in ("increase_above", "amount_above"):
            for code in getattr(when, field) or {}:
                if code not in currencies:
                    problems.append(((*base, "when", field, code),
                                     f"rule {rule.id!r}: currency {code} has no limits under limits.currencies"))
    if policy.approvals.rules or any(b.effect == "needs_approval" for b in policy.blackouts):
        holders = [name for name, actor in policy.actors.items() if approving & set(actor.roles)]
        if not holders:
            problems.append((("approvals",), "approval rules exist but no actor holds a role with approve: true"))
    seen_blackouts: set[str] = set()
    for i, blackout in enumerate(policy.blackouts):
        if blackout.end < blackout.start:
            problems.append((("blackouts", i, "end"), f"end {blackout.end} is before start {blackout.start}"))
        elif (blackout.end - blackout.start).days > 366:
            problems.append((("blackouts", i, "end"), "a blackout window longer than a year is a typo"))
        if blackout.id in seen_blackouts:
            problems.append((("blackouts", i, "id"), f"blackout id {blackout.id!r} is used twice"))
        seen_blackouts.add(blackout.id)
    return problems


def _disclaimer_checks(policy: Policy) -> list[tuple[Loc, str]]:
    """A language listed twice in one disclaimer, or the same disclaimer (text, languages, when) twice."""
    problems: list[tuple[Loc, str]] = []
    seen: set[tuple[str, frozenset[str] | None, str]] = set()
    for i, disclaimer in enumerate(policy.brand.required_disclaimers):
        loc: Loc = ("brand", "required_disclaimers", i)
        problems += _duplicates((*loc, "languages"), disclaimer.languages or [], "language")
        key = (" ".join(disclaimer.text.split()).casefold(),
               frozenset(disclaimer.languages) if disclaimer.languages is not None else None, disclaimer.when)
        if key in seen:
            problems.append((loc, f"required disclaimer {disclaimer.text!r} is listed twice"))
        seen.add(key)
    return problems


def _duplicates(loc: Loc, values: list[str], what: str) -> list[tuple[Loc, str]]:
    """An entry listed twice (case-insensitively) is a sign of a copy-paste slip: report the second."""
    seen: set[str] = set()
    found: list[tuple[Loc, str]] = []
    for i, value in enumerate(values):
        folded = value.casefold()
        if folded in seen:
            found.append(((*loc, i), f"{what} {value!r} is listed twice"))
        seen.add(folded)
    return found
