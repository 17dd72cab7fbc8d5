"""What goes into the state is secret-free, whatever the caller hands over.

Callers pass requests through ``redact_all`` first; this is the second line: a
:class:`Secret` object is refused (it means the caller forgot), and every string is
scrubbed of the secret values this process has read (a server may echo a password in
an error message, a plain value may happen to contain one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from runner.secrets import SCRUBBER, Secret, scrub


class SecretInStateError(TypeError):
    """A :class:`Secret` object was handed to the state store: a bug in the caller."""


def refuse_secrets(value: Any, where: str) -> None:
    """Raise :class:`SecretInStateError` if ``value`` holds a :class:`Secret` anywhere."""
    if isinstance(value, Secret):
        raise SecretInStateError(
            f"refusing to store a secret in the state ({where}); pass the value through "
            "runner.secrets.redact_all first"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            refuse_secrets(key, where)
            refuse_secrets(item, f"{where}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            refuse_secrets(item, f"{where}[{index}]")


def scrubbed(value: Any) -> Any:
    """A deep copy of a JSON-like ``value`` with every string (keys too) scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub(_json_key(key)): scrubbed(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [scrubbed(item) for item in value]
    return value


def _json_key(key: Any) -> str:
    """A key as JSON writes it (True as "true", None as "null"), so both ways of making
    the stored text agree."""
    return key if isinstance(key, str) else json.dumps(key)


def to_json(value: Any, where: str) -> str:
    """The canonical, secret-free JSON text of ``value`` (sorted keys, no spaces)."""
    try:
        # One pass in C for the usual case: plain JSON data with no secret in it.
        text = _dumps(value)
    except TypeError:  # a Secret, or a type json.dumps does not take: the long way
        refuse_secrets(value, where)
        return _dumps(scrubbed(value))
    return _dumps(scrubbed(value)) if SCRUBBER.in_json(text) else text


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def scrubbed_text(text: str | None, where: str) -> str | None:
    refuse_secrets(text, where)
    return None if text is None else scrub(text)
