"""Errors of the Coalesce client.

    RunnerError
    ├── URLNotAllowedError        (urls.py) the URL is not one a token may be sent to
    └── CoalesceAPIError          Coalesce answered with an error, or an unusable answer
        └── CoalesceUnreachable   no answer at all, after the retries allowed

Coalesce's own text in them (error bodies, reason phrases, redirect targets) passes
through :func:`runner.secrets.foreign_text`, because a server may echo a credential it was
sent, in any encoding: such text is withheld whole, never edited. They never contain a
request's body or headers.
"""

from __future__ import annotations

import json
import re

import httpx

from runner.coalesce.models import ErrorBody
from runner.errors import RunnerError
from runner.secrets import foreign_text, holds_secret

__all__ = ["CoalesceAPIError", "CoalesceUnreachable", "api_error_from_response"]

#: What the program calls Coalesce's own text when it has to withhold it.
FOREIGN_CONTEXT = "Coalesce's error text"
_REASON_LIMIT = 80
_EXCERPT_LIMIT = 300

TOKEN_HELP = "Create a token in the Coalesce app: Deploy tab -> Generate Access Token."

# Request fields a 400 message may name; the first one found is pointed at in the hint.
_REQUEST_FIELDS = (
    "environmentID",
    "jobID",
    "includeNodesSelector",
    "excludeNodesSelector",
    "parallelism",
    "forceIgnoreWorkspaceStatus",
    "forceIgnoreEnvironmentStatus",
    "snowflakeAuthType",
    "snowflakeUsername",
    "snowflakePassword",
    "snowflakeKeyPairKey",
    "snowflakeKeyPairPass",
    "snowflakeWarehouse",
    "snowflakeRole",
    "userCredentials",
    "parameters",
    "runDetails",
    "runID",
    "orgID",
)


class CoalesceAPIError(RunnerError):
    """Coalesce answered a request with an error (or with something unusable).

    ``status`` is the HTTP status (``None`` when there was no answer), ``method`` and
    ``path`` say which call, ``error_string``/``error_detail`` are Coalesce's own text,
    already passed through :func:`~runner.secrets.foreign_text` by whoever built the
    error. The message as a whole is *not* checked again: it also holds text the spec's
    author chose (an environment id in the path), and withholding it when a secret shows
    up there would tell the author whether a guess was right.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        method: str = "",
        path: str = "",
        error_string: str | None = None,
        error_detail: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.path = path
        self.error_string = error_string or None
        self.error_detail = error_detail or None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class CoalesceUnreachable(CoalesceAPIError):
    """No answer from Coalesce (connection refused, timeouts...), after every retry."""


def api_error_from_response(
    response: httpx.Response,
    *,
    method: str,
    path: str,
    token_source: str,
    attempts: int = 1,
) -> CoalesceAPIError:
    """The error to raise for a non-2xx ``response`` to ``method path``."""
    status = response.status_code
    error_string, error_detail = _coalesce_error_text(response)
    what = f"{method} {path}"
    reason = foreign_text(response.reason_phrase, context="The reason phrase", limit=_REASON_LIMIT)
    message = f"Coalesce answered {status} {reason} to {what}".rstrip()
    if error_string:
        message += f": {error_string}"
    if error_detail and error_detail != error_string:
        message += f"\n  detail: {error_detail}"
    if attempts > 1:
        message += f"\n  (after {attempts} attempts)"
    return CoalesceAPIError(
        message,
        hint=_hint(status, response, f"{error_string or ''} {error_detail or ''}", token_source),
        status=status,
        method=method,
        path=path,
        error_string=error_string,
        error_detail=error_detail,
    )


def _coalesce_error_text(response: httpx.Response) -> tuple[str | None, str | None]:
    """Coalesce's ``errorString``/``errorDetail``, or a short excerpt of a body that is
    not in Coalesce's error shape (a proxy's HTML page, say); each withheld whole if it
    holds a secret (checked whole, before it is cut)."""
    status = response.status_code
    try:
        body = ErrorBody.model_validate(response.json())
    except (ValueError, json.JSONDecodeError):
        return _foreign(response.text, status, limit=_EXCERPT_LIMIT) or None, None
    raw_string, raw_detail = body.error.errorString or "", body.error.errorDetail or ""
    if holds_secret(raw_string + raw_detail):  # a secret split between the two fields
        sentence = _foreign(raw_string + raw_detail, status)
        return sentence or None, (sentence if raw_detail else None)
    error_string = _foreign(raw_string, status)
    error_detail = _foreign(raw_detail, status)
    return error_string or None, error_detail or None


def _foreign(text: str | None, status: int, *, limit: int = 500) -> str:
    return foreign_text(
        text,
        context=FOREIGN_CONTEXT,
        status=status,
        fields=fields_named_in(text or ""),
        limit=limit,
    )


def fields_named_in(text: str) -> list[str]:
    """The request fields a foreign text names: safe to show, they are our own words."""
    named = [field for field in _REQUEST_FIELDS if re.search(rf"\b{field}\b", text)]
    nested = re.findall(r"\b(?:runDetails|userCredentials)\.(\w+)", text)
    named += [
        f"{parent}.{child}"
        for parent in ("runDetails", "userCredentials")
        for child in nested
        if child in _REQUEST_FIELDS and f"{parent}.{child}" in text
    ]
    return named


def _hint(status: int, response: httpx.Response, text: str, token_source: str) -> str | None:
    if status == 401:
        return (
            f"Coalesce did not accept the access token from {token_source}. Check that it is "
            "a current token for this Coalesce URL (region); tokens are revoked when their "
            "user is disabled or changes password, email or MFA. " + TOKEN_HELP
        )
    if status == 403:
        return (
            f"The token from {token_source} is valid but its user may not do this; check "
            "the user's role in the project of this environment."
        )
    if status == 400:
        field = _field_named_in(text)
        if field:
            return f"Coalesce rejected the field {field}; check that field in the spec."
        return "Coalesce rejected the request as invalid; its message above says why."
    if status == 404:
        return (
            "The environment or run may not exist, or the token's user cannot see it. "
            "Check environmentID (or the run id) and that the URL is this environment's "
            "Coalesce region."
        )
    if status == 429:
        return "Coalesce is rate limiting requests; wait a little and try again."
    if 300 <= status < 400:
        host = foreign_text(_location_host(response), context="its target", limit=_REASON_LIMIT)
        target = f" to {host}" if host else ""
        return (
            f"Coalesce redirected the request{target}; set coalesce.url to the final "
            "address (redirects are not followed, so the token stays on the allowed host)."
        )
    if status >= 500:
        return "This is a problem on Coalesce's side; try again later."
    return None


def _location_host(response: httpx.Response) -> str:
    try:
        return httpx.URL(response.headers.get("location", "")).host
    except httpx.InvalidURL:
        return ""


def _field_named_in(text: str) -> str | None:
    for field in _REQUEST_FIELDS:
        if re.search(rf"\b{field}\b", text):
            return field
    return None
