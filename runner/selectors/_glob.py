"""Case-insensitive globs: ``*`` is any run of characters, ``?`` any one character.

Every other character, ``[`` and ``\\`` included, stands for itself: Coalesce documents
only ``*`` and ``?``. Patterns and values are compared after ``str.lower()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WILDCARDS = "*?"


@dataclass(frozen=True, slots=True)
class Glob:
    """A lowercased pattern and what an index needs to find its matches quickly."""

    pattern: str
    prefix: str  # the literal text before the first wildcard
    suffix: str  # the literal text after the last wildcard
    regex: re.Pattern[str] | None  # None when prefix or suffix alone decide a match

    @property
    def literal(self) -> bool:
        """No wildcard: only the value equal to the pattern matches."""
        return not any(char in self.pattern for char in _WILDCARDS)

    @property
    def matches_everything(self) -> bool:
        return bool(self.pattern) and set(self.pattern) == {"*"}

    @property
    def prefix_only(self) -> bool:
        """``PREFIX*``: every value starting with the prefix matches."""
        return self.pattern.rstrip("*") == self.prefix and self.pattern != self.prefix

    @property
    def suffix_only(self) -> bool:
        """``*SUFFIX``: every value ending with the suffix matches."""
        return self.pattern.lstrip("*") == self.suffix and self.pattern != self.suffix


@lru_cache(maxsize=8192)
def compile_glob(pattern: str) -> Glob:
    """The glob of ``pattern`` (any letter case), compiled once per distinct pattern."""
    lowered = pattern.lower()
    glob = Glob(lowered, _literal_prefix(lowered), _literal_prefix(lowered[::-1])[::-1], None)
    if glob.literal or glob.prefix_only or glob.suffix_only:
        return glob  # a dictionary look-up or a sorted range finds these; no regex needed
    return Glob(glob.pattern, glob.prefix, glob.suffix, _regex(lowered))


def _regex(lowered: str) -> re.Pattern[str]:
    parts: list[str] = []
    for char in lowered:
        if char == "*":
            if not parts or parts[-1] != ".*":  # runs of stars mean the same as one
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _literal_prefix(text: str) -> str:
    cut = min((text.find(char) for char in _WILDCARDS if char in text), default=len(text))
    return text[:cut]
