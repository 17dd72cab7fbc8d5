"""What goes into the state is secret-free because no secret is handed over.

Callers pass requests through ``redact_all`` and foreign text through
``runner.secrets.foreign_text`` first. This is the structural guard behind that: a
:class:`Secret` object is refused (it means the caller forgot). Nothing is edited: a
value the program or the spec author wrote is stored exactly as written, so a short
secret such as ``run`` can never rewrite a stored key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from runner.secrets import Secret


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


def to_json(value: Any, where: str) -> str:
    """The canonical JSON text of ``value`` (sorted keys, no spaces); a :class:`Secret`
    anywhere in it is refused."""
    try:
        # One pass in C for the usual case: plain JSON data (a Secret is not JSON data).
        return _dumps(value)
    except TypeError:  # a Secret, or a mapping or sequence json.dumps does not take
        refuse_secrets(value, where)
        return _dumps(_plain(value))


def _plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every sequence a list."""
    if isinstance(value, Mapping):
        return {_json_key(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(item) for item in value]
    return value


def _json_key(key: Any) -> str:
    """A key as JSON writes it (True as "true", None as "null")."""
    return key if isinstance(key, str) else json.dumps(key)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def scrubbed_text(text: str | None, where: str) -> str | None:
    """``text`` as given, once checked not to be a :class:`Secret` object."""
    refuse_secrets(text, where)
    return text
