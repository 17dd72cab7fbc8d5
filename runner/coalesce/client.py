"""The async Coalesce API client.

One :class:`CoalesceClient` speaks for one base URL and one token. Connections are
pooled per base URL: a :class:`ClientPool` hands out clients that share one
``httpx.AsyncClient`` for each URL, whatever their token. Reads retry; writes follow the
"never fire twice" rules of :mod:`runner.coalesce.retry` and report an
:class:`~runner.coalesce.outcomes.Ambiguous` outcome instead of guessing.

The token is revealed only while the ``Authorization`` header of a request is built,
and request bodies (which carry Snowflake credentials) only while they are encoded.
Neither appears in any error.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from importlib import metadata
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import pydantic

from runner.coalesce.errors import CoalesceAPIError, CoalesceUnreachable, api_error_from_response
from runner.coalesce.gate import SendGate
from runner.coalesce.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    DeployedJob,
    Environment,
    EnvironmentNode,
    Page,
    RunInfo,
    RunResult,
    RunStatusResponse,
    RunSummary,
    StartRunResponse,
)
from runner.coalesce.outcomes import Ambiguous, CancelAccepted, CancelOutcome, Started, StartOutcome
from runner.coalesce.requests import WriteRequest
from runner.coalesce.retry import (
    CERTIFICATE_HINT,
    READ_RETRY,
    WRITE_RETRY,
    RetryPolicy,
    Verdict,
    describe_exception,
    is_certificate_failure,
    parse_retry_after,
    read_exception_verdict,
    read_status_verdict,
    write_exception_verdict,
    write_status_verdict,
)
from runner.coalesce.transport import transport_for_many
from runner.coalesce.urls import SIM_URL, check_url, is_loopback_url
from runner.errors import RunnerError
from runner.secrets import Secret, foreign_name, foreign_text, reveal_all

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "DETAIL_DEADLINE_FACTOR",
    "DETAIL_READ_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "MAX_ERROR_ANSWER_BYTES",
    "MAX_PAGES",
    "PAGE_SIZE",
    "READ_TIMEOUT_ENV",
    "ClientPool",
    "Clock",
    "CoalesceClient",
]

log = logging.getLogger(__name__)

#: Connect, read, write and wait-for-a-free-connection limits, in seconds. The read
#: limit (how long one read may wait for data) comes from ``RUNNER_READ_TIMEOUT`` when
#: set and no timeout is passed.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=30.0)
READ_TIMEOUT_ENV = "RUNNER_READ_TIMEOUT"
#: Seconds one request may take in all, from the wait for a connection to the last byte
#: of the answer: per-read timeouts alone let a server that trickles a byte now and
#: then hold a request for ever. ``RUNNER_REQUEST_DEADLINE`` overrides it.
DEFAULT_DEADLINE = 120.0
DEADLINE_ENV = "RUNNER_REQUEST_DEADLINE"
#: Listing nodes with ``detail=true`` is slow on large graphs: its read timeout, and its
#: deadline (this many times the usual one), are longer.
DETAIL_READ_TIMEOUT = 180.0
DETAIL_DEADLINE_FACTOR = 3.0
#: The largest answer read, 16 MiB; a larger one is not read whole. A page holds at
#: most :data:`PAGE_SIZE` items, so this leaves over 80 KB for each (a detailed node
#: with its columns and dependencies is a few KB), while an answer that runs away (or a
#: hostile one) cannot take more memory than this per request in flight.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Of an answer that is not 2xx only this much is read: it only feeds a message.
MAX_ERROR_ANSWER_BYTES = 64 * 1024
# Timeouts and deadlines from the environment must be above zero and at most a day.
_MAX_SECONDS = 86_400.0
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)
#: Items asked for per page (the API allows up to 1000).
PAGE_SIZE = 200
#: A list longer than this many pages is treated as a server fault, not read to the end.
MAX_PAGES = 500

_SIM_BASE = "http://sim"
_URLS_KEPT = 16
_TOKEN_SOURCE = "the configured Coalesce token"

ItemT = TypeVar("ItemT")
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
Params = dict[str, str]


@dataclass(frozen=True)
class Clock:
    """Time, chance and waiting, as the client uses them; tests replace them so that
    nothing really sleeps."""

    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    random: Callable[[], float] = random.random
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time


@dataclass(frozen=True)
class _Policies:
    read: RetryPolicy = READ_RETRY
    write: RetryPolicy = WRITE_RETRY
    clock: Clock = field(default_factory=Clock)


@dataclass(frozen=True)
class _Answer:
    """A 2xx answer, how many tries it took, and when the last try was sent."""

    response: httpx.Response
    attempts: int
    sent_at: float


class _RequestFault(Exception):
    """Internal: a try that failed on this side's limits; ``str()`` is secret-free."""


class _DeadlineHit(_RequestFault):
    """The request's total deadline passed before its answer was complete."""

    def __init__(self, deadline: float, *, sent: bool) -> None:
        super().__init__(f"no complete answer within {deadline:g} s ({DEADLINE_ENV})")
        self.sent = sent


class _AnswerTooLarge(_RequestFault):
    """A 2xx answer longer than :data:`MAX_ANSWER_BYTES`; it was not read whole."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"Coalesce answered {status} with more than {MAX_ANSWER_BYTES // 2**20} MiB; "
            "stopped reading it"
        )
        self.status = status


class _AmbiguousWrite(Exception):
    """Internal: a write failed in a way that may have left it carried out."""

    def __init__(self, outcome: Ambiguous) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class _ClosedOnExit:
    """``async with`` closes it (see ``aclose``)."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class CoalesceClient(_ClosedOnExit):
    """Calls the Coalesce API at one base URL with one token.

    ``url`` is checked against the allow-list (:func:`runner.coalesce.urls.check_url`)
    before anything is sent; ``sim://`` talks to the embedded simulator in-process.
    ``token_source`` says in words where the token came from (e.g. "the environment
    variable COALESCE_TOKEN"), for the hint of a 401. ``transport`` replaces the network
    (tests pass ``httpx.MockTransport``); ``mounts`` gives the transport of a base URL
    that is not on the network (the embedded simulator, at ``sim://``). ``http``
    (the connections of a :class:`ClientPool`) shares existing connections; they are then
    not closed by :meth:`aclose`. ``gate`` is checked right before every request is sent (see
    :mod:`runner.coalesce.gate`); by default the client has an open gate of its own.
    ``timeout`` and ``deadline`` (seconds for a whole request) default to
    ``RUNNER_READ_TIMEOUT`` and ``RUNNER_REQUEST_DEADLINE`` of ``environ`` (or of
    ``os.environ``), else to :data:`DEFAULT_TIMEOUT` and :data:`DEFAULT_DEADLINE`.
    """

    def __init__(
        self,
        url: str,
        token: Secret,
        *,
        token_source: str = _TOKEN_SOURCE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        read_retry: RetryPolicy = READ_RETRY,
        write_retry: RetryPolicy = WRITE_RETRY,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
        mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        gate: SendGate | None = None,
    ) -> None:
        self.base_url = check_url(url, environ)
        _check_token(token, token_source)
        self.gate = gate if gate is not None else SendGate()
        self._token = token
        self._token_source = token_source
        timeout = timeout if timeout is not None else timeout_from_environ(environ)
        self._timeout = timeout
        self._deadline = deadline if deadline is not None else deadline_from_environ(environ)
        self._policies = _Policies(read_retry, write_retry, clock or Clock())
        self._owns_http = http is None
        if http is None:
            http = _new_http_client(
                self.base_url, _transport_for(self.base_url, transport, mounts), timeout, limits
            )
        self._http = http
        self._urls: dict[str, httpx.URL] = {}

    @property
    def link_base(self) -> str:
        """The app URL runs' pages are under (``<it>/runs/<runCounter>``)."""
        return _SIM_BASE if self.base_url == SIM_URL else self.base_url.rstrip("/")

    @property
    def host(self) -> str:
        """The host requests go to, for messages."""
        return "sim" if self.base_url == SIM_URL else httpx.URL(self.base_url).host

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ scheduler (writes)

    async def fire(self, request: WriteRequest) -> StartOutcome:
        """``POST /scheduler/startRun`` or ``POST /scheduler/rerun``, as the request's type
        says. Its secrets are revealed only while the body is encoded.

        Returns :class:`Started` with the run's id, or :class:`Ambiguous` when the run
        may or may not have been created (it is then *not* sent again). Raises
        :class:`CoalesceAPIError` when Coalesce refused the request, and
        :class:`CoalesceUnreachable` when it never reached Coalesce.
        """
        path = request.path
        try:
            answer = await self._write(path, request.body())
        except _AmbiguousWrite as ambiguous:
            return ambiguous.outcome
        response = answer.response
        try:
            started = StartRunResponse.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            # A 2xx means Coalesce accepted the request: the run most likely exists, but
            # without a usable id we cannot follow it. Ask the caller to look for it.
            return Ambiguous(
                reason=f"Coalesce answered {response.status_code} without a usable "
                f"runCounter ({_first_problem(exc)}; a run id is a whole number from 1 "
                "to 2**63-1)",
                method="POST",
                path=path,
                sent_at=answer.sent_at,
                status=response.status_code,
                attempts=answer.attempts,
            )
        return Started(run_counter=started.runCounter, attempts=answer.attempts)

    async def cancel_run(
        self, run_id: int, environment_id: str, org_id: str | None = None
    ) -> CancelOutcome:
        """``POST /scheduler/cancelRun``; Coalesce answers 204 with no body."""
        body: dict[str, Any] = {"runID": run_id, "environmentID": environment_id}
        if org_id is not None:
            body["orgID"] = org_id
        path = "/scheduler/cancelRun"
        try:
            answer = await self._write(path, body)
        except _AmbiguousWrite as ambiguous:
            return ambiguous.outcome
        return CancelAccepted(run_id=run_id, attempts=answer.attempts)

    # ------------------------------------------------------------------ scheduler (reads)

    async def run_status(self, run_counter: int) -> RunStatusResponse:
        """``GET /scheduler/runStatus?runCounter=N``."""
        data = await self._get("/scheduler/runStatus", {"runCounter": str(run_counter)})
        status = self._parse(RunStatusResponse, data, "/scheduler/runStatus")
        _note_unknown_status(status.runStatus)
        # The link is Coalesce's text, shown and stored: withheld whole if it holds a secret.
        return status.model_copy(update={"runLink": foreign_name(status.runLink, limit=2000)})

    # ------------------------------------------------------------------ runs

    async def list_runs(
        self,
        *,
        environment_id: str | None = None,
        run_status: str | None = None,
        run_type: str | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        starting_from: str | int | None = None,
        detail: bool | None = None,
    ) -> Page[RunSummary]:
        """One page of ``GET /api/v1/runs``; pass its ``next`` as ``starting_from`` for
        the following one (or use :meth:`iter_runs`)."""
        params = _run_params(
            environment_id, run_status, run_type, order_by, order_by_direction, detail
        )
        if limit is not None:
            params["limit"] = str(limit)
        if starting_from is not None:
            params["startingFrom"] = str(starting_from)
            params.setdefault("orderBy", "id")  # the API requires it with startingFrom
        data = await self._get("/api/v1/runs", params)
        return self._parse(Page[RunSummary], data, "/api/v1/runs")

    async def iter_runs(
        self,
        *,
        environment_id: str | None = None,
        run_status: str | None = None,
        run_type: str | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        starting_from: str | int | None = None,
        detail: bool | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RunSummary]:
        """Every run matching the filters, page after page (newest first by default).
        Stop iterating early to stop fetching."""
        params = _run_params(
            environment_id, run_status, run_type, order_by, order_by_direction, detail
        )
        if starting_from is not None:
            params["startingFrom"] = str(starting_from)
        async for run in self._each_run(Page[RunSummary], params, page_size):
            yield run

    async def iter_run_details(
        self,
        *,
        environment_id: str | None = None,
        run_status: str | None = None,
        run_type: str | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RunInfo]:
        """:meth:`iter_runs` with ``detail=true``: every matching run with its
        ``runDetails``, ``runTimeParameters`` and secret-free ``userCredentials``, page
        after page. Stop iterating early to stop fetching."""
        params = _run_params(
            environment_id, run_status, run_type, order_by, order_by_direction, True
        )
        async for run in self._each_run(Page[RunInfo], params, page_size):
            yield run

    async def _each_run(
        self, page_type: type[Page[ItemT]], params: Params, page_size: int
    ) -> AsyncIterator[ItemT]:
        async for page in self._pages(
            "/api/v1/runs", page_type, {**params, "limit": str(page_size)}
        ):
            for run in page.data:
                yield run

    async def active_runs(self, environment_id: str) -> list[RunInfo]:
        """The environment's runs Coalesce shows as ``running`` or ``waitingToRun``, with
        their ``runDetails`` and parameters (``detail=true``), whoever started them."""
        found: list[RunInfo] = []
        for status in ("running", "waitingToRun"):
            params = _run_params(environment_id, status, None, "id", "desc", True)
            params["limit"] = str(PAGE_SIZE)
            async for page in self._pages("/api/v1/runs", Page[RunInfo], params):
                found.extend(page.data)
        return found

    async def get_run(self, run_id: int) -> RunInfo:
        """``GET /api/v1/runs/{runID}``; ``run_id`` is the ``runCounter`` of startRun."""
        path = f"/api/v1/runs/{int(run_id)}"
        return self._parse(RunInfo, await self._get(path), path)

    async def run_results(self, run_id: int) -> list[RunResult]:
        """``GET /api/v1/runs/{runID}/results``: one result per node."""
        path = f"/api/v1/runs/{int(run_id)}/results"
        return await self._all_items(path, Page[RunResult], {})

    # ------------------------------------------------------------------ environments

    async def list_environments(self, *, detail: bool = False) -> list[Environment]:
        """Every environment the token can see (``GET /api/v1/environments``)."""
        params = {"detail": _bool(detail), "limit": str(PAGE_SIZE)}
        return await self._all_items("/api/v1/environments", Page[Environment], params)

    async def get_environment(self, environment_id: str) -> Environment:
        """``GET /api/v1/environments/{id}``: status, runTimeParameters and more."""
        path = f"/api/v1/environments/{_path_id(environment_id)}"
        return self._parse(Environment, await self._get(path), path)

    async def list_nodes(
        self, environment_id: str, *, detail: bool = True
    ) -> list[EnvironmentNode]:
        """Every node deployed in an environment. With ``detail`` (the default) each
        node carries its dependencies (see :func:`runner.coalesce.models.dependency_edges`)."""
        path = f"/api/v1/environments/{_path_id(environment_id)}/nodes"
        params = {"detail": _bool(detail), "limit": str(PAGE_SIZE)}
        timeout = _with_read_timeout(self._timeout, DETAIL_READ_TIMEOUT) if detail else None
        deadline = self._deadline * DETAIL_DEADLINE_FACTOR if detail else None
        return await self._all_items(
            path, Page[EnvironmentNode], params, timeout=timeout, deadline=deadline
        )

    async def list_jobs(self, environment_id: str) -> list[DeployedJob]:
        """Every job deployed in an environment (``GET /api/v1/environments/{id}/jobs``).
        An older Coalesce answers 404: see :func:`runner.coalesce.jobs.read_jobs`."""
        path = f"/api/v1/environments/{_path_id(environment_id)}/jobs"
        return await self._all_items(path, Page[DeployedJob], {"limit": str(PAGE_SIZE)})

    async def get_job(self, environment_id: str, job_id: str) -> DeployedJob:
        """One deployed job (``GET /api/v1/environments/{id}/jobs/{jobID}``): how a
        Coalesce without the jobs list is asked about the jobs a spec names."""
        path = f"/api/v1/environments/{_path_id(environment_id)}/jobs/{_path_id(job_id)}"
        return self._parse(DeployedJob, await self._get(path), path)

    # ------------------------------------------------------------------ paging

    async def _all_items(
        self,
        path: str,
        page_type: type[Page[ItemT]],
        params: Params,
        *,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
    ) -> list[ItemT]:
        items: list[ItemT] = []
        async for page in self._pages(path, page_type, params, timeout=timeout, deadline=deadline):
            items.extend(page.data)
        return items

    async def _pages(
        self,
        path: str,
        page_type: type[Page[ItemT]],
        params: Params,
        *,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Page[ItemT]]:
        """Follow ``next`` cursors until there is none. A cursor seen before means the
        server is going round in circles: stop there rather than loop forever."""
        params = dict(params)
        seen = {params["startingFrom"]} if "startingFrom" in params else set()
        if seen:
            params.setdefault("orderBy", "id")
        for _ in range(MAX_PAGES):
            data = await self._get(path, params, timeout=timeout, deadline=deadline)
            page = self._parse(page_type, data, path)
            yield page
            cursor = page.next
            if not cursor:
                return
            if cursor in seen:
                log.warning("GET %s returned the cursor %r again; stopped paging", path, cursor)
                return
            seen.add(cursor)
            params["startingFrom"] = cursor
            # The API requires orderBy whenever startingFrom is sent.
            params.setdefault("orderBy", page.orderBy or "id")
        raise CoalesceAPIError(
            f"GET {path} at {self.host} returned more than {MAX_PAGES} pages; stopped reading.",
            hint="This looks like a fault on Coalesce's side; try again later.",
            method="GET",
            path=path,
        )

    # ------------------------------------------------------------------ requests

    async def _get(
        self,
        path: str,
        params: Params | None = None,
        *,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
    ) -> Any:
        answer = await self._attempts(
            "GET", path, params=params, timeout=timeout, deadline=deadline
        )
        response = answer.response
        try:
            return response.json()
        except ValueError:
            raise CoalesceAPIError(
                f"Coalesce answered GET {path} at {self.host} with a body that is not JSON.",
                hint="Check that coalesce.url is the Coalesce app URL of your region, "
                "not a proxy or login page.",
                status=response.status_code,
                method="GET",
                path=path,
            ) from None

    async def _write(self, path: str, body: Mapping[str, Any]) -> _Answer:
        content = json.dumps(reveal_all(body), separators=(",", ":")).encode()
        return await self._attempts("POST", path, content=content)

    async def _attempts(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
    ) -> _Answer:
        """Send until a 2xx answer or until the rules say stop. A write that may have
        been carried out raises :class:`_AmbiguousWrite`; a closed gate raises
        :class:`SendingStopped` before any try."""
        is_write = content is not None
        policy = self._policies.write if is_write else self._policies.read
        clock = self._policies.clock
        started = clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            sent_at = clock.wall()
            retry_after: float | None = None
            status: int | None = None
            failure: httpx.Response | Exception
            try:
                response = await self._send(
                    method, path, params, content, timeout, deadline or self._deadline
                )
            except _DeadlineHit as hit:
                failure = hit
                # Like a read timeout: harmless to repeat for a read; for a write that
                # left, the answer is what is missing, not the action.
                verdict = Verdict.AMBIGUOUS if is_write and hit.sent else Verdict.RETRY
            except _AnswerTooLarge as too_large:
                failure, status = too_large, too_large.status
                verdict = Verdict.AMBIGUOUS if is_write else Verdict.FAIL
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                failure = exc
                verdict = (write_exception_verdict if is_write else read_exception_verdict)(exc)
            else:
                if response.is_success:
                    return _Answer(response, attempt, sent_at)
                failure, status = response, response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=clock.wall)
                verdict = write_status_verdict(status) if is_write else read_status_verdict(status)
            if verdict is Verdict.AMBIGUOUS:
                raise _AmbiguousWrite(
                    Ambiguous(
                        reason=_failure_text(failure),
                        method=method,
                        path=path,
                        sent_at=sent_at,
                        status=status,
                        attempts=attempt,
                    )
                )
            elapsed = clock.monotonic() - started
            delay = (
                policy.next_delay(
                    attempt, elapsed=elapsed, retry_after=retry_after, draw=clock.random()
                )
                if verdict is Verdict.RETRY
                else None
            )
            if delay is None:
                raise self._give_up(failure, method, path, attempt, elapsed, is_write)
            log.info(
                "%s %s at %s: %s; retrying in %.1f s (try %d of %d)",
                method,
                path,
                self.host,
                _failure_text(failure),
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            await self.gate.pause(delay, sleep=clock.sleep)

    async def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        content: bytes | None,
        timeout: httpx.Timeout | None,
        deadline: float,
    ) -> httpx.Response:
        """One try: the answer, read whole (up to the caps), within ``deadline`` seconds.

        The gate is checked here and once more just before the first byte is written
        (see :class:`_GateCheck`), so that no path can send past a closed gate."""
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        self.gate.check(method, path)
        progress = _GateCheck(self.gate, method, path)
        request = self._http.build_request(
            method,
            self._url(path),
            params=params,
            content=content,
            headers=headers,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            extensions={"trace": progress},
        )
        scope = asyncio.timeout(deadline)
        try:
            async with scope:
                response = await self._http.send(request, stream=True)
                try:
                    await _read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            if not scope.expired():
                raise
            raise _DeadlineHit(deadline, sent=progress.may_have_sent) from None
        return response

    def _url(self, path: str) -> httpx.URL:
        """``path`` under the base URL, parsed once: httpx would parse and join it again
        for every request (a tenth of the client's CPU when firing many runs)."""
        url = self._urls.get(path)
        if url is None:
            base = self._http.base_url
            url = base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode("ascii"))
            if len(self._urls) < _URLS_KEPT:  # paths with run ids are not worth keeping
                self._urls[path] = url
        return url

    def _give_up(
        self,
        failure: httpx.Response | Exception,
        method: str,
        path: str,
        attempts: int,
        elapsed: float,
        is_write: bool,
    ) -> CoalesceAPIError:
        if isinstance(failure, httpx.Response):
            return api_error_from_response(
                failure,
                method=method,
                path=path,
                token_source=self._token_source,
                attempts=attempts,
            )
        nothing_done = " Nothing was started or changed there." if is_write else ""
        if isinstance(failure, _AnswerTooLarge):
            return CoalesceAPIError(
                f"{failure} ({method} {path} at {self.host}).",
                hint="An answer this large is a fault of Coalesce or of a proxy in between; "
                "check coalesce.url and try again later.",
                status=failure.status,
                method=method,
                path=path,
            )
        if is_certificate_failure(failure):
            return CoalesceUnreachable(
                f"Did not send {method} {path} to {self.host}: its TLS certificate was not "
                f"trusted ({_failure_text(failure)}).{nothing_done}",
                hint=CERTIFICATE_HINT,
                method=method,
                path=path,
            )
        tried = f"tried {attempts} time{'s' if attempts > 1 else ''} over {elapsed:.1f} s"
        return CoalesceUnreachable(
            f"Could not reach Coalesce at {self.host} for {method} {path}: "
            f"{_failure_text(failure)} ({tried}).{nothing_done}",
            hint="Check coalesce.url (the region's app URL), your network, VPN or proxy "
            "(HTTPS_PROXY), then try again.",
            method=method,
            path=path,
        )

    def _parse(self, model: type[ModelT], data: Any, path: str) -> ModelT:
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                _problem_text(error)
                for error in exc.errors(include_url=False, include_input=False)[:5]
            )
            raise CoalesceAPIError(
                f"Coalesce's answer to GET {path} at {self.host} has an unexpected "
                f"shape: {problems}",
                hint="The Coalesce API may have changed; please report this with the "
                "runner version.",
                method="GET",
                path=path,
            ) from None


class ClientPool(_ClosedOnExit):
    """Hands out :class:`CoalesceClient` objects that share the connections of each base
    URL. Close the pool (``async with`` or :meth:`aclose`) when done. ``gate`` (shared
    by all its clients, ``pool.gate``), ``timeout`` and ``deadline`` are as for
    :class:`CoalesceClient`.

    With ``max_connections``, each URL may open that many connections (all kept alive);
    otherwise ``limits`` applies."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        deadline: float | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        read_retry: RetryPolicy = READ_RETRY,
        write_retry: RetryPolicy = WRITE_RETRY,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        max_connections: int | None = None,
        mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        gate: SendGate | None = None,
    ) -> None:
        #: Shared by every client of the pool: closing it stops all their sending.
        self.gate = gate if gate is not None else SendGate()
        self._transport = transport
        self._mounts = dict(mounts or {})
        self._timeout = timeout if timeout is not None else timeout_from_environ(environ)
        self._deadline = deadline if deadline is not None else deadline_from_environ(environ)
        self._limits = limits
        self._read_retry = read_retry
        self._write_retry = write_retry
        self._clock = clock or Clock()
        self._environ = environ
        if max_connections is not None:
            self._limits = httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
        self._http: dict[str, httpx.AsyncClient] = {}

    def client(
        self, url: str, token: Secret, *, token_source: str = _TOKEN_SOURCE
    ) -> CoalesceClient:
        """A client for ``url`` (checked against the allow-list) and ``token``."""
        base_url = check_url(url, self._environ)
        http = self._http.get(base_url)
        if http is None:
            transport = _transport_for(base_url, self._transport, self._mounts)
            http = _new_http_client(base_url, transport, self._timeout, self._limits)
            self._http[base_url] = http
        return CoalesceClient(
            base_url,
            token,
            token_source=token_source,
            timeout=self._timeout,
            deadline=self._deadline,
            read_retry=self._read_retry,
            write_retry=self._write_retry,
            clock=self._clock,
            environ=self._environ,
            http=http,
            gate=self.gate,
        )

    async def aclose(self) -> None:
        clients, self._http = list(self._http.values()), {}
        for http in clients:
            await http.aclose()


# ---------------------------------------------------------------------- helpers


class _GateCheck:
    """httpcore's ``trace`` hook, checking the gate once more at the last moment: just
    before the request's first byte is written, after any wait for a free connection,
    a connect or a TLS handshake (the gate may have closed meanwhile)."""

    __slots__ = ("_gate", "_method", "_path", "_sent", "_traced")

    def __init__(self, gate: SendGate, method: str, path: str) -> None:
        self._gate = gate
        self._method = method
        self._path = path
        self._sent = False
        self._traced = False

    @property
    def may_have_sent(self) -> bool:
        """False only when the network layer reported its progress and the request's
        first byte had not been written yet. A transport that reports nothing (a test's
        or the simulator's) may have received the request."""
        return self._sent or not self._traced

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        self._traced = True
        if event.endswith(".send_request_headers.started"):
            self._gate.check(self._method, self._path)
            self._sent = True


def _new_http_client(
    base_url: str,
    transport: httpx.AsyncBaseTransport | None,
    timeout: httpx.Timeout,
    limits: httpx.Limits,
) -> httpx.AsyncClient:
    # Loopback and the embedded simulator never go through a proxy: a proxy would see
    # the token (in clear over http) for a request that never needed to leave the host.
    direct = base_url == SIM_URL or is_loopback_url(base_url)
    if base_url == SIM_URL:
        base_url = _SIM_BASE
    if not direct and transport is None:
        check_proxy_environment()
    verify = _tls_context() if base_url.startswith("https://") else _untrusting_tls_context()
    # Mounted rather than passed as the transport: httpx then still mounts the proxies
    # of the environment, which take precedence for the URLs they cover.
    spread = transport_for_many(limits, verify) if transport is None else None
    try:
        client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            mounts={"all://": spread} if spread is not None else None,
            timeout=timeout,
            limits=limits,
            verify=verify,
            follow_redirects=False,  # a redirect could carry the token to another host
            headers={"accept": "application/json", "user-agent": _user_agent()},
            cookies=_no_cookies(),
            trust_env=not direct,  # proxies (HTTPS_PROXY, ALL_PROXY, NO_PROXY) only if not
        )
    except (ValueError, ImportError, httpx.InvalidURL):
        # What check_proxy_environment cannot foresee (a NO_PROXY entry httpx rejects).
        # httpx's message may quote a proxy URL with its password: it is not shown.
        raise RunnerError(
            "The proxy settings in the environment could not be used.",
            hint=f"Check {', '.join(_PROXY_VARIABLES[::2])} and NO_PROXY "
            "(and their lower-case forms).",
        ) from None
    return client


# The variables httpx reads for proxies; each in both cases, lower case winning.
_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def check_proxy_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise a :class:`RunnerError` naming the variable when a proxy variable httpx will
    read (of ``os.environ`` by default) holds no usable proxy URL, or names a SOCKS
    proxy while the ``socksio`` package is missing. The URL itself is never shown: it
    may carry a password."""
    environ = os.environ if environ is None else environ
    for name in _PROXY_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        url = value if "://" in value else f"http://{value}"  # as httpx reads it
        try:
            scheme = httpx.URL(url).scheme
            if scheme not in _PROXY_SCHEMES or not httpx.URL(url).host:
                raise ValueError(scheme)
        except (ValueError, TypeError, httpx.InvalidURL):
            raise RunnerError(
                f"{name} does not hold a usable proxy URL.",
                hint=f"Set {name} to a URL like http://proxy.example:3128 "
                "(schemes: http, https, socks5, socks5h), or unset it.",
            ) from None
        if scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise RunnerError(
                f"{name} names a SOCKS proxy, but the socksio package is not installed.",
                hint="Install it (pip install 'httpx[socks]'), or use an http:// proxy.",
            )


def _no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing. Clients with different tokens share the
    connections of a URL: a cookie set for one token's request must not ride along with
    another's (the API authenticates by the Authorization header alone)."""
    # A CookieJar, not httpx.Cookies: httpx copies the latter into a jar of its own.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (verification on, the usual CA bundle) for every client: each
    would otherwise load the CA bundle again, 20 ms apiece."""
    return httpx.create_ssl_context()


@functools.cache
def _untrusting_tls_context() -> ssl.SSLContext:
    """For a plain-http base URL, which never speaks TLS (redirects are not followed):
    a context that verifies but trusts no one, so nothing could ever pass it, made
    without reading the CA bundle."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _transport_for(
    base_url: str,
    transport: httpx.AsyncBaseTransport | None,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None,
) -> httpx.AsyncBaseTransport | None:
    """The transport for ``base_url``: ``transport`` if given, else the one mounted for
    its scheme (``sim://`` is the embedded simulator, mounted by whoever built it), else
    None: httpx's own."""
    if transport is not None:
        return transport
    mounted = (mounts or {}).get(SIM_URL if base_url == SIM_URL else base_url)
    if mounted is None and base_url == SIM_URL:
        raise RunnerError(
            "The embedded simulator (sim://) is not available here.",
            hint="Use the URL of a running simulator (runner sim) or of Coalesce instead.",
        )
    return mounted


def _user_agent() -> str:
    try:
        return f"runner/{metadata.version('runner')}"
    except metadata.PackageNotFoundError:
        return "runner"


def _run_params(
    environment_id: str | None,
    run_status: str | None,
    run_type: str | None,
    order_by: str | None,
    order_by_direction: str | None,
    detail: bool | None,
) -> Params:
    params: Params = {}
    if environment_id is not None:
        params["environmentID"] = str(environment_id)
    if run_status is not None:
        params["runStatus"] = run_status
    if run_type is not None:
        params["runType"] = run_type
    if order_by is not None:
        params["orderBy"] = order_by
    if order_by_direction is not None:
        params["orderByDirection"] = order_by_direction
    if detail is not None:
        params["detail"] = _bool(detail)
    return params


_UNKNOWN_STATUSES_SEEN: set[str] = set()


def _note_unknown_status(status: str) -> None:
    # An unknown status is treated as "still running"; say so once, so that a new
    # Coalesce status that should have ended a wait does not go unnoticed.
    if status in TERMINAL_STATUSES or status in ACTIVE_STATUSES:
        return
    if status not in _UNKNOWN_STATUSES_SEEN:
        _UNKNOWN_STATUSES_SEEN.add(status)
        log.warning("Coalesce reported the unknown run status %r; treating it as running", status)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _path_id(value: str | int) -> str:
    text = str(value)
    if not text.isdigit():
        # An id goes into the URL path; anything but digits could change the path.
        raise RunnerError(
            f'{text!r} is not a Coalesce id: ids are digits, like "12".',
            hint="Check the environmentID in the spec.",
        )
    return text


def _with_read_timeout(
    timeout: httpx.Timeout, read: float, *, at_least: bool = True
) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeout.connect,
        read=max(timeout.read or 0.0, read) if at_least else read,
        write=timeout.write,
        pool=timeout.pool,
    )


def _failure_text(failure: httpx.Response | Exception) -> str:
    """What went wrong, for messages: the reason phrase and the library's message are
    foreign text (withheld whole if they hold a secret)."""
    if isinstance(failure, httpx.Response):
        reason = foreign_text(failure.reason_phrase, context="The reason phrase", limit=80)
        return f"Coalesce answered {failure.status_code} {reason}".rstrip()
    if isinstance(failure, _RequestFault):
        return str(failure)  # this program's own words
    return foreign_text(describe_exception(failure), context="The network error")


def _problem_text(error: Any) -> str:
    return f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"


def _first_problem(exc: pydantic.ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return _problem_text(errors[0]) if errors else "unreadable"


async def _read_capped(response: httpx.Response) -> None:
    """Read the answer's body into ``response``, at most :data:`MAX_ANSWER_BYTES` of a
    2xx answer (more raises :class:`_AnswerTooLarge`) and the first
    :data:`MAX_ERROR_ANSWER_BYTES` of any other (the rest is dropped unread)."""
    success = response.is_success
    cap = MAX_ANSWER_BYTES if success else MAX_ERROR_ANSWER_BYTES
    declared = response.headers.get("content-length", "")
    if success and declared.isdigit() and int(declared) > cap:
        raise _AnswerTooLarge(response.status_code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: a gzip bomb counts in full
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            if success:
                raise _AnswerTooLarge(response.status_code)
            break
    # What Response.aread() would have stored; later .content and .json() read it.
    response._content = b"".join(chunks)[:cap]


def _seconds_from_environ(environ: Mapping[str, str] | None, name: str, default: float) -> float:
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= _MAX_SECONDS):
        # The value is not repeated: whatever it is, it is not a number of seconds.
        raise RunnerError(
            f"{name} must be a number of seconds above 0 and at most {_MAX_SECONDS:g}.",
            hint=f"Set {name} to a number such as {default:g}, or unset it for the "
            f"default of {default:g} s.",
        )
    return seconds


def timeout_from_environ(environ: Mapping[str, str] | None = None) -> httpx.Timeout:
    """:data:`DEFAULT_TIMEOUT`, with the read limit of ``RUNNER_READ_TIMEOUT`` if set."""
    default = DEFAULT_TIMEOUT.read or 60.0
    read = _seconds_from_environ(environ, READ_TIMEOUT_ENV, default)
    return (
        DEFAULT_TIMEOUT
        if read == default
        else _with_read_timeout(DEFAULT_TIMEOUT, read, at_least=False)
    )


def deadline_from_environ(environ: Mapping[str, str] | None = None) -> float:
    """``RUNNER_REQUEST_DEADLINE`` if set, else :data:`DEFAULT_DEADLINE`."""
    return _seconds_from_environ(environ, DEADLINE_ENV, DEFAULT_DEADLINE)


def _check_token(token: Secret, token_source: str) -> None:
    """A token goes into the Authorization header: visible ASCII only, or httpx fails
    deep inside with an internal error (and h11's message would quote the header)."""
    value = token.reveal()
    if all(" " <= char <= "~" for char in value) and value == value.strip():
        return
    raise RunnerError(
        f"The Coalesce token from {token_source} is not a valid HTTP header value: it "
        "holds a character that is not printable ASCII (a newline, a control character, "
        "a non-ASCII letter or a space at either end).",
        hint="Copy the token again from Coalesce (Deploy > User Settings > Token), "
        "without quotes, spaces or line breaks.",
    )
