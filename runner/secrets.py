"""Secret values: a type that never prints itself, and a scrubber for everything else.

A resolved secret is wrapped in :class:`Secret` the moment it is read. Its ``str``,
``repr`` and JSON form are ``(secret)``; only :meth:`Secret.reveal` gives the value, and
only the request sender calls it. Because values can still escape through text that
is not ours (a server echoing a password in an error, a traceback), every resolved value
is also registered with the process-wide :data:`SCRUBBER`, and every line the program
prints or writes passes through :func:`scrub`.
"""

from __future__ import annotations

import json
import threading
from typing import Any

REDACTED = "(secret)"


class Secret:
    """A secret value that cannot be printed by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        SCRUBBER.register(value)

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


def _json_escaped(form: str) -> str:
    return json.dumps(form)[1:-1]


def _variants(value: str) -> set[str]:
    """The forms in which a value may show up in text: as is, JSON- or repr-escaped,
    and, for multi-line values such as PEM keys, each substantial line on its own."""
    forms = {value, _json_escaped(value), repr(value)[1:-1], " ".join(value.split())}
    if "\n" in value or "\r" in value:
        forms.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
    return {f for f in forms if f.strip()}


class Scrubber:
    """Removes every registered secret value from text. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: list[str] = []
        self._json_forms: list[str] = []

    def register(self, value: str) -> None:
        if not value or not value.strip():
            return
        with self._lock:
            known = set(self._forms)
            known.update(_variants(value))
            # Longest first, so a value that contains another is replaced whole.
            self._forms = sorted(known, key=len, reverse=True)
            self._json_forms = sorted({_json_escaped(form) for form in known})

    def scrub(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def in_json(self, text: str) -> bool:
        """Whether JSON ``text`` (as ``json.dumps`` writes it) may hold a secret in one of
        its strings. False means scrubbing each string would change none of them: JSON
        escapes character by character, so a form inside a string shows up escaped."""
        return any(form in text for form in self._json_forms)

    def clear(self) -> None:
        """Forget every value (tests only)."""
        with self._lock:
            self._forms = []
            self._json_forms = []


SCRUBBER = Scrubber()


def scrub(text: str) -> str:
    """``text`` with every secret value this process has read replaced by ``(secret)``."""
    return SCRUBBER.scrub(text)


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
