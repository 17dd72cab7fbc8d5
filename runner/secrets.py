"""Secret values: a type that never prints itself, and one gate for text from outside.

Two rules keep secrets out of everything the program shows or writes:

1. **Our own documents never hold a secret, by construction.** A resolved secret is
   wrapped in :class:`Secret` the moment it is read. Its ``str``, ``repr`` and JSON form
   are ``(secret)``; only :meth:`Secret.reveal` gives the value, and only the request
   sender calls it. Plans, plan files, state rows, reports and apply/status output are
   built from :func:`redact_all` copies, so no string replacement is ever applied to
   them: a short secret such as ``x`` or ``true`` cannot corrupt a key, an enum or a
   name, and where a value would have been replaced reveals nothing.

2. **Text from outside goes through** :func:`foreign_text`. Coalesce's error bodies,
   reason phrases and library exception messages are not ours: a server may echo a
   credential it was sent, in any encoding. Such text is checked for every known secret
   in every common encoding (see :mod:`runner._secret_forms`), and when one is found the
   text is **withheld whole** and replaced by a fixed sentence (status code and safe
   field names only). It is never edited, so nothing positional leaks. Foreign text is
   also cut to a bounded length.

Secrets shorter than :data:`MIN_DETECTABLE` characters cannot be told apart from
ordinary text (``x`` is in most words): while one is known, every foreign text is
withheld. ``validate``, ``plan`` and ``apply`` warn about such weak secrets.
"""

from __future__ import annotations

import codecs
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from runner._secret_forms import (
    MIN_DETECTABLE,
    SecretForms,
    TooManyViews,
    skeleton,
    views_of,
)

__all__ = [
    "FOREIGN_LIMIT",
    "KNOWN_SECRETS",
    "MIN_DETECTABLE",
    "REDACTED",
    "TOO_SHORT",
    "WITHHELD_NAME",
    "Secret",
    "bounded",
    "foreign_name",
    "foreign_text",
    "holds_secret",
    "redact_all",
    "reveal_all",
    "withheld",
]

REDACTED = "(secret)"

#: Foreign text longer than this is cut (after it was checked whole).
FOREIGN_LIMIT = 500
#: How much of a foreign text is checked beyond what can be shown: at least this much,
#: and room for the longest known secret in its longest encoding (each character may take
#: up to 16 in text escaped twice) starting just before the cut.
_MIN_CHECKED = 16 * 1024
_CHARS_PER_CHAR = 16


class Secret:
    """A secret value that cannot be printed by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        KNOWN_SECRETS.register(value)

    def reveal(self) -> str:
        """The real value: only for the request body sent to Coalesce."""
        return self._value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling would write the value somewhere
        raise TypeError("a Secret cannot be pickled")


class KnownSecrets:
    """Every secret value this process has read, with its encoded forms. Thread-safe.

    It only *detects*; it never edits text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: dict[str, SecretForms] = {}
        self._too_short = False
        self._longest = 0

    def register(self, value: str) -> None:
        if not value:
            return
        with self._lock:
            if value in self._forms:
                return
            forms = SecretForms.of(value)
            self._forms[value] = forms
            self._too_short = self._too_short or not forms.detectable
            self._longest = max(self._longest, len(value))

    def folded_in(self, text: str, fold: Callable[[str], str]) -> bool:
        """Whether a known (detectable) secret, folded by ``fold``, is in ``text`` folded
        the same way: for text made from another by dropping or changing characters (a
        name made of a job's name), where a secret one dropped character hid from
        :meth:`found_in` can come back whole."""
        with self._lock:
            known = [value for value, forms in self._forms.items() if forms.detectable]
        folded_text = fold(text)
        return any((secret := fold(value)) and secret in folded_text for value in known)

    def checked_chars(self, shown: int) -> int:
        """How much of a text of which ``shown`` characters may be shown must be checked,
        so that a secret whose encoding starts in the shown part is found whole."""
        return max(_MIN_CHECKED, shown + _CHARS_PER_CHAR * self._longest)

    @property
    def undetectable(self) -> bool:
        """Whether a secret too short to be detected in text is known."""
        return self._too_short

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds a known (detectable) secret in any encoding."""
        with self._lock:
            known = [forms for forms in self._forms.values() if forms.detectable]
        if not known or not text:
            return False
        if any(forms.in_encoded(text) for forms in known):
            return True
        try:
            return any(_holds_one(view, known) for view in views_of(text))
        except TooManyViews:
            return True  # it could not be checked whole: treated as holding one

    def clear(self) -> None:
        """Forget every value (tests only)."""
        with self._lock:
            self._forms = {}
            self._too_short = False
            self._longest = 0


def _holds_one(view: str, known: list[SecretForms]) -> bool:
    if any(forms.in_plain(view) for forms in known):
        return True
    bones = skeleton(view)
    # Also read backwards and in rot13: trivial disguises a careless (or hostile) server
    # may apply to what it echoes.
    disguises = (bones, bones[::-1], codecs.encode(bones, "rot13"))
    return any(forms.in_skeleton(disguised) for disguised in disguises for forms in known)


KNOWN_SECRETS = KnownSecrets()
#: The older name of :data:`KNOWN_SECRETS` (``SCRUBBER.register`` marks a value as secret).
SCRUBBER = KNOWN_SECRETS


def holds_secret(text: str, *, shown: int | None = None) -> bool:
    """Whether ``text`` holds any secret this process has read, in any common encoding.

    With ``shown``, only the part of the text that matters when at most ``shown``
    characters of it are shown is checked (a long answer checks in bounded time)."""
    if shown is not None:
        text = text[: KNOWN_SECRETS.checked_chars(shown)]
    return KNOWN_SECRETS.found_in(text)


def foreign_text(
    text: str | None,
    *,
    context: str,
    status: int | None = None,
    fields: Iterable[str] = (),
    limit: int = FOREIGN_LIMIT,
    one_line: bool = True,
) -> str:
    """The one way text from outside the program (a server's error text, a library's
    exception message or traceback) may be shown or stored.

    Returns ``text`` with its whitespace runs collapsed and cut to ``limit`` characters,
    or, when it holds a known secret in any encoding (or a secret too short to be
    checked is known), a fixed sentence naming ``context``, the ``status`` code and the
    ``fields`` that are safe to name. The text is never edited to hide a secret.
    """
    if not text:
        return ""
    if KNOWN_SECRETS.undetectable:
        return withheld(context, status=status, fields=fields, why=TOO_SHORT)
    # Checked as received and as it would be shown (whitespace runs collapsed: a long run
    # of spaces must not push a secret past the part that is checked).
    flat = " ".join(text.split()) if one_line else text
    if holds_secret(text, shown=limit) or holds_secret(flat, shown=limit):
        return withheld(context, status=status, fields=fields)
    return bounded(text, limit, one_line=one_line)


_HOLDS_ONE = "it contained a credential"
TOO_SHORT = (
    f"a secret shorter than {MIN_DETECTABLE} characters is in use, which cannot be looked "
    "for in text (use a longer secret)"
)


#: What stands in for a name from outside that held a secret.
WITHHELD_NAME = "(withheld: it contained a credential)"


def foreign_name(text: str | None, *, limit: int = 200) -> str | None:
    """A short identifier from outside (a node's name or id, a run state): kept as is,
    cut to ``limit``, unless it holds a known secret, when it is withheld whole.

    Unlike :func:`foreign_text`, a secret too short to be looked for does not withhold
    every name: a name is not prose, and withholding them all would hide every failed
    node. Such a secret is warned about when it is read."""
    if text is None:
        return None
    if holds_secret(text, shown=limit):
        return WITHHELD_NAME
    return text if len(text) <= limit else text[: limit - 3] + "..."


def withheld(
    context: str,
    *,
    status: int | None = None,
    fields: Iterable[str] = (),
    why: str = _HOLDS_ONE,
) -> str:
    """The fixed sentence that stands in for a foreign text that was withheld."""
    facts = [f"status {status}"] if status is not None else []
    named = sorted(set(fields))
    if named:
        facts.append(f"fields: {', '.join(named)}")
    detail = f" ({'; '.join(facts)})" if facts else ""
    return f"{context} was withheld because {why}{detail}"


def bounded(text: str, limit: int, *, one_line: bool = True) -> str:
    """``text`` cut to ``limit`` characters; on one line (whitespace runs collapsed)
    unless ``one_line`` is false (a traceback keeps its lines). Characters a terminal
    would act on or draw as nothing (escapes, other controls, zero-width and bidi
    formatting) are shown as ``\\uXXXX``, so text from outside cannot move the
    cursor, recolour the screen or hide what it says."""
    flat = " ".join(text.split()) if one_line else text.rstrip()
    flat = "".join(_visible(char) for char in flat)
    return flat if len(flat) <= limit else flat[: max(limit - 3, 0)] + "..."


def _visible(char: str) -> str:
    if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf"):
        return char
    return f"\\u{ord(char):04x}"


def reveal_all(value: Any) -> Any:
    """A deep copy of ``value`` with every :class:`Secret` replaced by its real value."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: reveal_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal_all(v) for v in value]
    return value


def redact_all(value: Any) -> Any:
    """A deep copy of ``value`` with every :class:`Secret` replaced by ``"(secret)"``."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(v) for v in value]
    return value
