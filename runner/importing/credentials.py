"""The ``userCredentials`` block of an imported spec: templates, never values.

Coalesce never returns a password, key or passphrase (``GET /api/v1/runs/{id}`` gives
``userCredentials`` without secrets: the auth type, user, warehouse, role). So the
block is built from the latest run that shows credentials: its auth type decides which
secrets the spec reads (``{{ secret('SNOWFLAKE_PASSWORD') }}`` for Basic,
``{{ secret('SNOWFLAKE_PRIVATE_KEY') }}`` for KeyPair, nothing for OAuth), and its user,
warehouse and role are written as seen. What history cannot tell is said in a comment:
whether a key is encrypted (the passphrase line is left commented out), and which auth
type was used when no run shows one (Basic, the API's default, is assumed).

A Coalesce that does return a secret anyway has it registered as one
(:func:`register_returned_secrets`): from then on no text holding it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runner.coalesce.models import RunInfo
from runner.importing.text import Unwritable, template_safe
from runner.secrets import KNOWN_SECRETS, holds_secret

__all__ = [
    "AUTH_TYPES",
    "PASSPHRASE_TEMPLATE",
    "CredentialsBlock",
    "infer_credentials",
    "register_returned_secrets",
]

AuthType = Literal["Basic", "KeyPair", "OAuth"]
AUTH_TYPES: tuple[AuthType, ...] = ("Basic", "KeyPair", "OAuth")

PASSWORD_TEMPLATE = "{{ secret('SNOWFLAKE_PASSWORD') }}"
KEY_TEMPLATE = "{{ secret('SNOWFLAKE_PRIVATE_KEY') }}"
PASSPHRASE_TEMPLATE = "{{ secret('SNOWFLAKE_KEY_PASS') }}"
#: When no run shows the user: a variable (a user is not a secret), empty until set.
USER_TEMPLATE = "{{ var('snowflake_user', default='') }}"

#: The wire's names of what Coalesce shows of credentials, with the shorter names
#: its response schema uses (``authType``, ``username``, ...).
_PUBLIC_KEYS = {
    "snowflakeAuthType": ("snowflakeAuthType", "authType"),
    "snowflakeUsername": ("snowflakeUsername", "username"),
    "snowflakeWarehouse": ("snowflakeWarehouse", "warehouse"),
    "snowflakeRole": ("snowflakeRole", "role"),
}


@dataclass(frozen=True)
class CredentialsBlock:
    """``userCredentials`` as spec text: ``fields`` in order (values are literal text or
    templates), and what the comments say."""

    auth_type: AuthType
    fields: tuple[tuple[str, str], ...]
    source: str
    notes: tuple[str, ...] = ()

    def as_data(self) -> dict[str, str]:
        return dict(self.fields)


def register_returned_secrets(runs: Iterable[RunInfo]) -> int:
    """Mark as secret every credential value Coalesce should not have returned: any
    text under a key that is not one of the four it shows (auth type, user, warehouse,
    role), whatever the key is called; returns how many were found."""
    found = 0
    for run in runs:
        for key, value in (run.userCredentials or {}).items():
            if key in _public_names() or not isinstance(value, str) or not value:
                continue
            KNOWN_SECRETS.register(value)
            found += 1
    return found


def _public_names() -> set[str]:
    return {name for names in _PUBLIC_KEYS.values() for name in names}


def infer_credentials(runs: Iterable[RunInfo]) -> CredentialsBlock:
    """The block for runs like these (newest first)."""
    seen = [run for run in runs if run.userCredentials]
    if not seen:
        return _block(
            "Basic",
            {},
            "no run in the history showed its credentials",
            ("Basic (user and password) is assumed: change snowflakeAuthType if needed",),
        )
    latest = seen[0]
    shown = _public(latest.userCredentials or {})
    auth = shown.get("snowflakeAuthType")
    notes: list[str] = []
    if auth not in AUTH_TYPES:
        what = "no auth type" if auth is None else "an auth type runner does not know"
        notes.append(
            f"Coalesce showed {what} for run {latest.id}: Basic (user and password) is "
            "assumed; change snowflakeAuthType if needed"
        )
        auth = "Basic"
    others = {_public(run.userCredentials or {}).get("snowflakeAuthType") for run in seen[1:]} - {
        auth,
        None,
    }
    if others:
        notes.append(
            f"{sum(1 for run in seen[1:] if _auth_of(run) in others)} earlier run(s) used "
            "another auth type; the latest run's is kept"
        )
    return _block(auth, shown, f"as run {latest.id} (the latest) used them", tuple(notes))


def _auth_of(run: RunInfo) -> str | None:
    return _public(run.userCredentials or {}).get("snowflakeAuthType")


def _public(credentials: Mapping[str, Any]) -> dict[str, str]:
    """What Coalesce shows, under the wire's names; text that holds a secret or cannot
    be written is left out."""
    shown: dict[str, str] = {}
    for wire, names in _PUBLIC_KEYS.items():
        value = next((credentials[n] for n in names if isinstance(credentials.get(n), str)), None)
        if value is None or not value.strip() or holds_secret(value):
            continue
        try:
            shown[wire] = template_safe(value)
        except Unwritable:
            continue
    return shown


def _block(
    auth: str, shown: Mapping[str, str], source: str, notes: tuple[str, ...]
) -> CredentialsBlock:
    assert auth in AUTH_TYPES
    fields: list[tuple[str, str]] = [("snowflakeAuthType", auth)]
    if auth != "OAuth":
        if "snowflakeUsername" not in shown:
            notes = (
                *notes,
                "no run showed the Snowflake user: set it with --var snowflake_user=NAME "
                "(or RUNNER_VAR_snowflake_user), or write it in",
            )
        fields.append(("snowflakeUsername", shown.get("snowflakeUsername", USER_TEMPLATE)))
        if auth == "Basic":
            fields.append(("snowflakePassword", PASSWORD_TEMPLATE))
        else:
            fields.append(("snowflakeKeyPairKey", KEY_TEMPLATE))
    for key in ("snowflakeWarehouse", "snowflakeRole"):
        if key in shown:
            fields.append((key, shown[key]))
    return CredentialsBlock(auth, tuple(fields), source, notes)
