"""Errors of the Coalesce client.

    RunnerError
    ├── URLNotAllowedError        (urls.py) the URL is not one a token may be sent to
    └── CoalesceAPIError          Coalesce answered with an error, or an unusable answer
        └── CoalesceUnreachable   no answer at all, after the retries allowed

Every text in them passes through :func:`runner.secrets.scrub`, because Coalesce's own
error text may echo a credential it was sent. They never contain a request's body or
headers.
"""

from __future__ import annotations

import json
import re

import httpx

from runner.coalesce.models import ErrorBody
from runner.errors import RunnerError
from runner.secrets import scrub

__all__ = ["CoalesceAPIError", "CoalesceUnreachable", "api_error_from_response"]

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
    scrubbed of every secret this process knows.
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
        super().__init__(scrub(message), hint=scrub(hint) if hint else None)
        self.status = status
        self.method = method
        self.path = scrub(path)
        self.error_string = scrub(error_string) if error_string else None
        self.error_detail = scrub(error_detail) if error_detail else None

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
    message = f"Coalesce answered {status} {response.reason_phrase} to {what}".rstrip()
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
    not in Coalesce's error shape (a proxy's HTML page, say)."""
    try:
        body = ErrorBody.model_validate(response.json())
    except (ValueError, json.JSONDecodeError):
        # Scrubbed before it is reshaped: a secret cut in two at the excerpt's end, or
        # with its spaces collapsed, would no longer be recognised.
        text = " ".join(scrub(response.text).split())
        return (text[:300] + ("..." if len(text) > 300 else "")) or None, None
    return body.error.errorString or None, body.error.errorDetail


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
        target = f" to {_location_host(response)}" if _location_host(response) else ""
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
