"""Request validation, answering like Coalesce: status 400 with an error body.

Only what Coalesce is known or documented to check is checked; unknown keys are
ignored, as a server that adds fields over time does. No error text ever contains a
credential value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from runner.sim.world import EnvironmentSpec

__all__ = [
    "FORCE_KEYS",
    "ApiError",
    "check_environment_status",
    "digits",
    "force_flag",
    "json_object",
    "object_body",
    "optional_selector_text",
    "parallelism",
    "parameters",
    "user_credentials",
]

FORCE_KEYS = ("forceIgnoreWorkspaceStatus", "forceIgnoreEnvironmentStatus")
AUTH_TYPES = ("Basic", "KeyPair", "OAuth")
SECRET_KEYS = frozenset({"snowflakePassword", "snowflakeKeyPairKey", "snowflakeKeyPairPass"})
_PUBLIC_CREDENTIAL_KEYS = (
    "snowflakeAuthType",
    "snowflakeUsername",
    "snowflakeWarehouse",
    "snowflakeRole",
    "snowflakeAccount",
)
_PEM = re.compile(
    r"-----BEGIN (?P<label>(?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----\n"
    r"(?:[A-Za-z0-9+/=:,\- ]*\n)*"
    r"-----END (?P=label)-----\n?"
)


class ApiError(Exception):
    """An error answer: ``{"error": {"errorString", "errorDetail"}}`` with ``status``."""

    def __init__(self, status: int, error: str, detail: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def bad_request(error: str, detail: str | None = None) -> ApiError:
    return ApiError(400, error, detail)


def json_object(raw: bytes, *, example: str) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what is wrong with it."""
    if not raw.strip():
        raise bad_request(
            "Invalid request body: the body is empty",
            f"Send a JSON object such as {example} with Content-Type: application/json.",
        )
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(
            "Invalid request body: not valid JSON",
            f"{_parse_problem(error)}. Send a JSON object such as {example} "
            "with Content-Type: application/json.",
        ) from None
    return object_body(value, example=example)


def object_body(value: object, *, example: str) -> dict[str, Any]:
    """An already parsed body, if it is a JSON object; else the 400 of :func:`json_object`."""
    if not isinstance(value, dict):
        raise bad_request(
            "Invalid request body: expected a JSON object",
            f"Got {_json_type(value)}; send a JSON object such as {example}.",
        )
    return value


def _parse_problem(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return "the body is not UTF-8 text"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def required_object(body: Mapping[str, Any], key: str, *, example: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        raise bad_request(f"Missing required field: {key}", f"The body must contain {example}.")
    if not isinstance(value, dict):
        raise bad_request(f"Invalid {key}: expected a JSON object", f"Got {_json_type(value)}.")
    return value


def digits(value: object, field: str, *, required: bool = True) -> str | None:
    """An ID as a digit string; integers are accepted (as Coalesce does)."""
    if value is None:
        if required:
            raise bad_request(
                f"Missing required field: {field}", f'Set {field} to the ID, e.g. "4".'
            )
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    raise bad_request(
        f'Invalid {field}: expected a string of digits such as "4"',
        f"Got {_json_type(value)}: {json.dumps(value)[:60]}.",
    )


def optional_selector_text(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid runDetails.{key}: expected a selector string",
            f'Got {_json_type(value)}; write e.g. "{{ location: STG }}".',
        )
    return value if value.strip() else None


def parallelism(details: Mapping[str, Any], default: int) -> int:
    value = details.get("parallelism")
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise bad_request(
        "Invalid runDetails.parallelism: expected a positive integer",
        f"Got {_json_type(value)}: {json.dumps(value)[:40]}. The default is 16.",
    )


def force_flag(details: Mapping[str, Any]) -> bool | None:
    """The force flag from either key; both present must agree."""
    given: dict[str, bool] = {}
    for key in FORCE_KEYS:
        value = details.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise bad_request(
                f"Invalid runDetails.{key}: expected true or false",
                f"Got {_json_type(value)}: {json.dumps(value)[:40]}.",
            )
        given[key] = value
    if len(set(given.values())) > 1:
        first, second = FORCE_KEYS
        raise bad_request(
            "Conflicting force flags in runDetails: "
            f"{first} is {json.dumps(given[first])} but {second} is {json.dumps(given[second])}",
            "Send one of the two keys, or both with the same value.",
        )
    return next(iter(given.values()), None)


def check_environment_status(environment: EnvironmentSpec, force: bool | None) -> None:
    if environment.status == "Failed Deploy" and not force:
        raise bad_request(
            f"Environment {environment.id} ({environment.name}) is in status Failed Deploy; "
            "it cannot be refreshed",
            "Fix the deployment and redeploy the environment, or set "
            "runDetails.forceIgnoreWorkspaceStatus (or forceIgnoreEnvironmentStatus) to true "
            "to refresh it anyway.",
        )


def parameters(body: Mapping[str, Any]) -> dict[str, str] | None:
    value = body.get("parameters")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(
            "Invalid parameters: expected a JSON object of string values",
            f'Got {_json_type(value)}; send e.g. {{"region": "emea"}}.',
        )
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad_request(
                f"Invalid parameters.{key}: expected a string value",
                f'Got {_json_type(item)}; send every parameter value as a string, e.g. "5".',
            )
    return dict(value)


def user_credentials(body: Mapping[str, Any]) -> dict[str, str]:
    """Check ``userCredentials`` for its auth type; return its secret-free part.

    Without the block, Coalesce uses the environment's OAuth connection.
    """
    credentials = body.get("userCredentials")
    if credentials is None:
        return {"snowflakeAuthType": "OAuth"}
    if not isinstance(credentials, dict):
        raise bad_request(
            "Invalid userCredentials: expected a JSON object",
            f'Got {_json_type(credentials)}; send e.g. {{"snowflakeAuthType": "OAuth"}}.',
        )
    auth_type = credentials.get("snowflakeAuthType", "Basic")
    if auth_type not in AUTH_TYPES:
        shown = json.dumps(auth_type)[:40] if not isinstance(auth_type, str) else repr(auth_type)
        raise bad_request(
            f"Invalid userCredentials.snowflakeAuthType: {shown}",
            "Expected exactly one of Basic, KeyPair, OAuth (case-sensitive).",
        )
    if auth_type == "Basic":
        _require_text(credentials, "snowflakeUsername", auth_type)
        _require_text(credentials, "snowflakePassword", auth_type)
    elif auth_type == "KeyPair":
        _require_text(credentials, "snowflakeUsername", auth_type)
        _require_text(credentials, "snowflakeKeyPairKey", auth_type)
        _check_private_key(
            credentials["snowflakeKeyPairKey"], credentials.get("snowflakeKeyPairPass")
        )
    public = {key: credentials.get(key) for key in _PUBLIC_CREDENTIAL_KEYS}
    public["snowflakeAuthType"] = auth_type
    return {key: value for key, value in public.items() if isinstance(value, str)}


def _require_text(credentials: Mapping[str, Any], key: str, auth_type: str) -> None:
    value = credentials.get(key)
    if not isinstance(value, str) or not value.strip():
        problem = "Missing" if value is None or value == "" else "Invalid"
        raise bad_request(
            f"{problem} userCredentials.{key}: required when snowflakeAuthType is {auth_type}",
            f"Send {key} as a non-empty string.",
        )


def _check_private_key(key: str, passphrase: object) -> None:
    # The key's text never appears in an answer: only what is wrong with its shape.
    if "\r" in key:
        raise bad_request(
            "Unable to parse private key: snowflakeKeyPairKey contains carriage returns (CRLF)",
            "Convert the PEM text to LF line endings; in JSON, newlines are written as \\n.",
        )
    match = _PEM.fullmatch(key.strip() + "\n")
    if match is None:
        raise bad_request(
            "Unable to parse private key: snowflakeKeyPairKey is not a PEM private key",
            "Send the whole PEM text, from the -----BEGIN PRIVATE KEY----- line to the "
            "-----END PRIVATE KEY----- line, with newlines written as \\n in the JSON.",
        )
    if passphrase is not None and not isinstance(passphrase, str):
        raise bad_request(
            "Invalid userCredentials.snowflakeKeyPairPass: expected a string",
            "Send the passphrase of the encrypted key as a string.",
        )
    if match.group("label").startswith("ENCRYPTED") and not passphrase:
        raise bad_request(
            "Unable to parse private key: the key is encrypted and no passphrase was given",
            "Send snowflakeKeyPairPass. Keys encrypted with an empty passphrase are not supported.",
        )
