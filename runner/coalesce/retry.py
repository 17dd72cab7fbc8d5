"""When to send a request again, and how long to wait first.

Two rules, because a repeated read is harmless and a repeated ``startRun`` fires a
second production run:

- **Reads** (GET) are retried on connection errors, timeouts (the per-read timeout and
  the total deadline of a request), 408, 429 and 5xx, with exponential backoff and full
  jitter, honouring ``Retry-After``, bounded in attempts and in total time.
- **Writes** (startRun, rerun, cancelRun) are retried only when the request provably
  never reached Coalesce's application: no connection was made (connection refused, a
  DNS failure, a connect timeout, a TLS handshake that failed before anything was sent,
  no free connection in the pool, the deadline hit before sending), or 429 (the rate
  limiter refuses before the application sees the request). Every 5xx, with
  ``Retry-After`` or not (a gateway may answer 503 after its backend created the run), a
  read timeout, a reset, the deadline hit after sending, or a 2xx answer that cannot be
  used is *ambiguous*: the run may exist. It is reported as such, never re-sent, and the
  caller looks for the run in Coalesce's list of runs.
- A TLS **certificate verification** failure is configuration, not weather: it is never
  retried, for reads nor writes, and is reported at once with what to check.

Everything here is pure: the clock, the random source and the sleep are the caller's.
"""

from __future__ import annotations

import email.utils
import enum
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx

__all__ = [
    "CERTIFICATE_HINT",
    "READ_RETRY",
    "WRITE_RETRY",
    "RetryPolicy",
    "Verdict",
    "describe_exception",
    "is_certificate_failure",
    "parse_retry_after",
    "read_exception_verdict",
    "read_status_verdict",
    "write_exception_verdict",
    "write_status_verdict",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    ``max_attempts`` counts every try, the first included. Waits grow as
    ``base_delay * 2**(n-1)``, capped at ``max_delay``, and are drawn uniformly from zero
    to that ("full jitter", so that many clients do not retry in step). A server's
    ``Retry-After`` replaces the drawn wait. No retry starts if it would end after
    ``max_total`` seconds from the first try.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_total) < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int, draw: float) -> float:
        """The jittered wait after failed try number ``attempt`` (1-based), for a
        ``draw`` in [0, 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return draw * ceiling

    def next_delay(
        self,
        attempt: int,
        *,
        elapsed: float,
        retry_after: float | None,
        draw: float,
    ) -> float | None:
        """How long to wait before try ``attempt + 1``, or ``None`` to give up.

        ``elapsed`` is the time since the first try started; ``retry_after`` the
        server's ``Retry-After`` in seconds, if it sent one.
        """
        if attempt >= self.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt, draw)
        if elapsed + delay > self.max_total:
            return None
        return delay


#: GETs: up to 5 tries within two minutes.
READ_RETRY = RetryPolicy()
#: Writes, for the failures where a retry is safe: up to 4 tries within a minute.
WRITE_RETRY = RetryPolicy(max_attempts=4, max_total=60.0)


def parse_retry_after(value: str | None, *, now: Callable[[], float]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date
    (``now`` gives the current time as a Unix timestamp). ``None`` when absent or
    unreadable; a date in the past is zero."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # HTTP-dates are GMT; a date without a zone is read so
        return None
    seconds = moment.timestamp() - now()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Verdict(enum.Enum):
    """What to do after a failed try."""

    RETRY = "retry"  # try again (after a wait), if the policy allows
    FAIL = "fail"  # stop and report the error; nothing was done on the server
    AMBIGUOUS = "ambiguous"  # stop; a write may have been carried out


# A request that failed with one of these never left this machine or never reached the
# server, so it cannot have been acted on.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures that are bugs or configuration, not weather: retrying cannot help.
_LOCAL_MISTAKES = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)


#: What to check when Coalesce's TLS certificate was not trusted.
CERTIFICATE_HINT = (
    "Check that coalesce.url names the Coalesce host itself (not an address or alias the "
    "certificate does not cover) and that this machine's clock is right. Behind a proxy "
    "or firewall that inspects TLS, point SSL_CERT_FILE to a CA bundle that includes "
    "its certificate."
)


def is_certificate_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a failed TLS certificate verification:
    the server is not who it claims, or this machine does not trust its issuer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def read_exception_verdict(exc: Exception) -> Verdict:
    if isinstance(exc, _LOCAL_MISTAKES) or is_certificate_failure(exc):
        return Verdict.FAIL
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        return Verdict.RETRY
    return Verdict.FAIL


def read_status_verdict(status: int) -> Verdict:
    """For a non-2xx answer to a GET."""
    if status in (408, 429) or 500 <= status <= 599:
        return Verdict.RETRY
    return Verdict.FAIL


def write_exception_verdict(exc: Exception) -> Verdict:
    if isinstance(exc, _LOCAL_MISTAKES) or is_certificate_failure(exc):
        return Verdict.FAIL
    if isinstance(exc, _NOT_SENT):
        return Verdict.RETRY
    # Read/write timeouts, resets, protocol errors, a body we could not decode: the
    # request may have been received and acted on.
    return Verdict.AMBIGUOUS


def write_status_verdict(status: int) -> Verdict:
    """For a non-2xx answer to startRun, rerun or cancelRun."""
    if status == 429:
        return Verdict.RETRY
    if 500 <= status <= 599:
        # A gateway or server error says nothing about whether the run was created, and
        # a Retry-After does not either: a gateway may send one after its backend acted.
        return Verdict.AMBIGUOUS
    return Verdict.FAIL


def describe_exception(exc: Exception) -> str:
    """A short, secret-free description of a transport failure, for messages."""
    described = {
        httpx.ConnectTimeout: "no connection could be made in time",
        httpx.ConnectError: "the connection failed",
        httpx.PoolTimeout: "no free connection in time (too many requests in flight)",
        httpx.ReadTimeout: "no answer in time after the request was sent",
        httpx.WriteTimeout: "sending the request timed out",
        httpx.WriteError: "sending the request failed",
        httpx.ReadError: "the connection broke while waiting for the answer",
        httpx.RemoteProtocolError: "the server closed or garbled the connection",
        httpx.DecodingError: "the answer could not be decoded",
    }
    if is_certificate_failure(exc):
        return "the TLS certificate of the server was not trusted"
    for kind, text in described.items():
        if isinstance(exc, kind):
            detail = str(exc).strip()
            return f"{text} ({detail})" if detail and detail != text else text
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
