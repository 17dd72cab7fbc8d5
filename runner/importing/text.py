"""Coalesce's text made safe for a spec: values that render back to themselves, run
names that follow the spec's rules, and comments that stay on one line.

Text from Coalesce is untrusted: a job name, a selector or a parameter may hold
newlines, control characters, YAML syntax or Jinja syntax. Spec values are Jinja
templates, so a value holding ``{{``, ``{%`` or ``{#`` is written as one Jinja string
literal (``{{ '...' }}``) with every character outside printable ASCII escaped: it
renders to exactly the text Coalesce gave, and nothing in it is ever run.
"""

from __future__ import annotations

import json
import re
import unicodedata

from runner.secrets import KNOWN_SECRETS, holds_secret
from runner.spec.models import NAME_PATTERN
from runner.spec.templates import MAX_RENDERED_CHARS, Renderer

__all__ = [
    "COMMENT_LIMIT",
    "NAME_LIMIT",
    "Unwritable",
    "comment_text",
    "slug",
    "template_safe",
    "unique_name",
]

#: How long a run name made from Coalesce's text may be (the spec allows 128).
NAME_LIMIT = 60
#: How much of Coalesce's text a comment quotes.
COMMENT_LIMIT = 120

_NOT_NAME = re.compile(r"[^a-z0-9_.]+")


class Unwritable(ValueError):
    """A text that no spec value can hold (its message is ours, never the text)."""


def template_safe(value: str) -> str:
    """``value`` as a spec string that renders to exactly ``value``.

    Raises :class:`Unwritable` for text a spec cannot hold: a lone surrogate (not
    UTF-8), or a template-like value longer than templates may render."""
    if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise Unwritable("it holds a character that is not valid Unicode text")
    if not Renderer.is_template(value):
        return value
    if len(value) > MAX_RENDERED_CHARS:
        raise Unwritable(
            f"it holds template syntax and is longer than the {MAX_RENDERED_CHARS:,} "
            "characters a template may render"
        )
    return "{{ '" + "".join(_escaped(char) for char in value) + "' }}"


def _escaped(char: str) -> str:
    # Jinja reads a string literal with Python's escapes (after making its newlines
    # '\n'): escaping everything but printable ASCII keeps \r, \0 and the rest exact.
    if char in "\\'":
        return "\\" + char
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def slug(text: str, *, limit: int = NAME_LIMIT) -> str:
    """``text`` as a run name's letters: lower-case ASCII letters, digits, ``_``, ``.``
    and ``-``, starting with a letter or digit; empty when nothing is left, and when
    ``text`` or the name made of it spells a known secret (dropping a character can
    make a secret whole again, so the name is checked as well as the text)."""
    name = _NOT_NAME.sub("-", _ascii(text).lower()).strip("-_.")[:limit].rstrip("-_.")
    if holds_secret(text) or holds_secret(name) or KNOWN_SECRETS.folded_in(name, _letters):
        return ""
    return name


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _letters(text: str) -> str:
    """Only the lower-case ASCII letters and digits of ``text``: how a secret would read
    in a name."""
    return re.sub(r"[^a-z0-9]", "", _ascii(text).lower())


def unique_name(wanted: str, fallback: str, taken: set[str]) -> str:
    """``wanted`` (or ``fallback`` when it is empty), made unique among ``taken`` with a
    ``-2``, ``-3``... suffix, and added to ``taken``."""
    base = wanted or fallback
    name, counter = base, 1
    while name in taken:
        counter += 1
        name = f"{base}-{counter}"
    assert re.fullmatch(NAME_PATTERN, name), name
    taken.add(name)
    return name


def comment_text(text: str, *, limit: int = COMMENT_LIMIT) -> str:
    """Coalesce's ``text`` quoted for a YAML comment: as a JSON string of printable
    ASCII (no line break can end the comment), cut to about ``limit`` characters."""
    shown = text if len(text) <= limit else text[:limit]
    quoted = json.dumps(shown, ensure_ascii=True)
    return quoted if shown == text else quoted + "..."
