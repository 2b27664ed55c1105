"""Prompts as versioned files.

Each prompt is a Markdown file under ``agent/prompts/`` with a small front matter::

    ---
    name: planner_system
    version: 3
    ---
    You are ...

The name and version are recorded with every model call, together with the SHA-256 of the text,
so an audit record says exactly which wording produced a plan. Bump the version whenever the
meaning of a prompt changes.
"""

from __future__ import annotations

import hashlib
import re
import string
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent.errors import BadInput, ConfigError, NotFound

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Prompt(BaseModel):
    """One versioned prompt."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    text: str
    sha256: str

    def render(self, **values: object) -> str:
        """The text with ``$placeholders`` filled in; a missing value is an error, not a blank."""
        try:
            return string.Template(self.text).substitute({k: str(v) for k, v in values.items()})
        except KeyError as exc:
            raise BadInput(f"prompt {self.name} v{self.version} needs a value for {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ConfigError(f"prompt {self.name} v{self.version} has a malformed placeholder: {exc}") from None


def parse_prompt(source: str, *, expected_name: str | None = None, origin: str = "prompt") -> Prompt:
    """A Prompt from a file's text (front matter with ``name`` and ``version``, then the body)."""
    lines = source.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (line.strip() for line in lines[1:]):
        raise ConfigError(f"{origin}: missing the '---' front matter with name and version")
    end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    meta: dict[str, str] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(f"{origin}:{number}: expected 'key: value'")
        meta[key.strip()] = value.strip().strip("'\"")
    name, version = meta.get("name"), meta.get("version")
    if not name or not version:
        raise ConfigError(f"{origin}: the front matter needs both 'name' and 'version'")
    if expected_name is not None and name != expected_name:
        raise ConfigError(f"{origin}: front matter says name {name!r}, the file name says {expected_name!r}")
    text = "\n".join(lines[end + 1:]).strip() + "\n"
    return Prompt(name=name, version=version, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


@lru_cache(maxsize=64)
def _load(name: str, directory: Path) -> Prompt:
    path = directory / f"{name}.md"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.md"))
        raise NotFound(f"unknown prompt {name!r} (known: {', '.join(known) or 'none'})")
    return parse_prompt(path.read_text(encoding="utf-8"), expected_name=name, origin=str(path))


def load_prompt(name: str, *, directory: Path | None = None) -> Prompt:
    """The prompt called ``name`` from ``agent/prompts/`` (or ``directory``)."""
    if not _NAME.match(name):
        raise BadInput(f"invalid prompt name {name!r} (lowercase letters, digits and underscores)")
    return _load(name, (directory or PROMPTS_DIR).resolve())
