"""startRun, rerun and cancelRun: retried only when the request provably did not reach
Coalesce; anything else that may have created a run is reported as Ambiguous."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from runner.coalesce import (
    Ambiguous,
    CancelAccepted,
    CoalesceAPIError,
    CoalesceClient,
    CoalesceUnreachable,
    RetryPolicy,
    Started,
)
from runner.coalesce.requests import RerunRequest, StartRunRequest
from runner.secrets import Secret

from .fakes import (
    FakeClock,
    FakeCoalesce,
    Step,
    answer,
    create,
    create_then_fail,
    error,
    json_body,
    make_client,
    refuse,
)

START = StartRunRequest("4", job_id="7")
RERUN = RerunRequest(41)

Call = Callable[[CoalesceClient], Awaitable[object]]


def start(client: CoalesceClient) -> Awaitable[object]:
    return client.fire(START)


def rerun(client: CoalesceClient) -> Awaitable[object]:
    return client.fire(RERUN)


def cancel(client: CoalesceClient) -> Awaitable[object]:
    return client.cancel_run(41, "4")


def cancelled(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
    server.reached.append(request)
    return httpx.Response(204)


def success_step(call: Call) -> Step:
    return cancelled if call is cancel else create(42)


WRITES = [
    pytest.param(start, id="startRun"),
    pytest.param(rerun, id="rerun"),
    pytest.param(cancel, id="cancelRun"),
]


# ------------------------------------------------------------------ start_run specifics


async def test_start_run_returns_the_run_counter() -> None:
    server = FakeCoalesce([create(42)])
    async with make_client(server) as client:
        outcome = await client.fire(START)
    assert outcome == Started(run_counter=42, attempts=1)
    request = server.reached[0]
    assert request.method == "POST"
    assert request.url.path == "/scheduler/startRun"
    assert request.headers["content-type"] == "application/json"
    assert json_body(request) == {"runDetails": {"environmentID": "4", "jobID": "7"}}


async def test_a_429_then_success_fires_exactly_one_run() -> None:
    server = FakeCoalesce([answer(429, headers={"Retry-After": "2"}), create(42)])
    clock = FakeClock()
    async with make_client(server, clock) as client:
        outcome = await client.fire(START)
    assert outcome == Started(run_counter=42, attempts=2)
    assert server.created == 1
    assert clock.sleeps == [2.0]


async def test_a_read_timeout_after_sending_is_ambiguous_and_not_resent() -> None:
    server = FakeCoalesce([create_then_fail(httpx.ReadTimeout)])
    clock = FakeClock(now=5.0)
    async with make_client(server, clock) as client:
        outcome = await client.fire(START)
    assert isinstance(outcome, Ambiguous)
    assert len(server.attempted) == 1
    assert server.created == 1
    assert outcome.status is None
    assert outcome.sent_at == clock.epoch + 5.0
    assert outcome.path == "/scheduler/startRun"
    assert "no answer in time" in outcome.reason


async def test_a_success_without_run_counter_is_ambiguous() -> None:
    server = FakeCoalesce([answer(200, {"ok": True})])
    async with make_client(server) as client:
        outcome = await client.fire(START)
    assert isinstance(outcome, Ambiguous)
    assert outcome.status == 200
    assert len(server.attempted) == 1


async def test_secrets_in_the_body_are_revealed_only_on_the_wire() -> None:
    password = Secret("CANARY-PASSWORD-7f3a")
    body = StartRunRequest(
        "4",
        job_id="7",
        credentials={"snowflakeAuthType": "Basic", "snowflakePassword": password},
    )
    server = FakeCoalesce([create(42)])
    async with make_client(server) as client:
        await client.fire(body)
    assert (
        json_body(server.reached[0])["userCredentials"]["snowflakePassword"]
        == "CANARY-PASSWORD-7f3a"
    )
    assert body.credentials is not None
    assert body.credentials["snowflakePassword"] is password  # the caller's request is untouched


# ------------------------------------------------------------------ the shared rule


@pytest.mark.parametrize("call", WRITES)
@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_writes_retry_when_the_request_never_left(
    call: Call, exc_type: type[httpx.TransportError]
) -> None:
    server = FakeCoalesce([refuse(exc_type), success_step(call)])
    async with make_client(server) as client:
        outcome = await call(client)
    assert isinstance(outcome, Started | CancelAccepted)
    assert len(server.reached) == 1
    assert len(server.attempted) == 2


@pytest.mark.parametrize("call", WRITES)
@pytest.mark.parametrize("retry_after", ["3", "0", "Wed, 21 Oct 2037 07:28:00 GMT"])
async def test_writes_never_resend_after_a_503_even_with_retry_after(
    call: Call, retry_after: str
) -> None:
    # A gateway may answer 503 with Retry-After after its backend created the run.
    def created_then_503(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        server.created += 1
        return httpx.Response(503, headers={"Retry-After": retry_after})

    server = FakeCoalesce([created_then_503, success_step(call)])
    clock = FakeClock()
    async with make_client(server, clock) as client:
        outcome = await call(client)
    assert isinstance(outcome, Ambiguous)
    assert outcome.status == 503
    assert len(server.attempted) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("call", WRITES)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_writes_treat_other_5xx_as_ambiguous(call: Call, status: int) -> None:
    server = FakeCoalesce([create_then_fail(httpx.ReadError, status=status)])
    async with make_client(server) as client:
        outcome = await call(client)
    assert isinstance(outcome, Ambiguous)
    assert outcome.status == status
    assert len(server.attempted) == 1


@pytest.mark.parametrize("call", WRITES)
@pytest.mark.parametrize(
    "exc_type",
    [
        httpx.ReadTimeout,
        httpx.WriteTimeout,
        httpx.WriteError,
        httpx.ReadError,
        httpx.RemoteProtocolError,
    ],
)
async def test_writes_never_resend_after_a_failure_once_sent(
    call: Call, exc_type: type[httpx.TransportError]
) -> None:
    server = FakeCoalesce([create_then_fail(exc_type)])
    async with make_client(server) as client:
        outcome = await call(client)
    assert isinstance(outcome, Ambiguous)
    assert len(server.attempted) == 1


@pytest.mark.parametrize("call", WRITES)
async def test_writes_give_up_cleanly_when_coalesce_is_unreachable(call: Call) -> None:
    server = FakeCoalesce([refuse() for _ in range(3)])
    policy = RetryPolicy(max_attempts=3, base_delay=1.0)
    async with make_client(server, write_retry=policy) as client:
        with pytest.raises(CoalesceUnreachable) as caught:
            await call(client)
    assert len(server.attempted) == 3
    assert "Nothing was started" in str(caught.value)
    assert "app.coalescesoftware.io" in str(caught.value)


@pytest.mark.parametrize("call", WRITES)
async def test_writes_stop_when_rate_limited_for_too_long(call: Call) -> None:
    server = FakeCoalesce([answer(429) for _ in range(4)])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await call(client)
    assert caught.value.status == 429
    assert len(server.attempted) == 4
    assert server.created == 0


@pytest.mark.parametrize("call", WRITES)
async def test_writes_rejected_by_coalesce_raise_without_retry(call: Call) -> None:
    server = FakeCoalesce([error(400, "environmentID is required")])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await call(client)
    assert caught.value.status == 400
    assert len(server.attempted) == 1


# ------------------------------------------------------------------ rerun and cancel


async def test_rerun_posts_to_rerun_and_returns_the_new_run() -> None:
    server = FakeCoalesce([create(43)])
    async with make_client(server) as client:
        outcome = await client.fire(RERUN)
    assert outcome == Started(run_counter=43)
    assert server.reached[0].url.path == "/scheduler/rerun"


async def test_cancel_sends_the_run_and_environment_and_accepts_204() -> None:
    server = FakeCoalesce([cancelled, cancelled])
    async with make_client(server) as client:
        first = await client.cancel_run(41, "4")
        second = await client.cancel_run(41, "4", org_id="org-9")
    assert first == CancelAccepted(run_id=41)
    assert second == CancelAccepted(run_id=41)
    assert json_body(server.reached[0]) == {"runID": 41, "environmentID": "4"}
    assert json_body(server.reached[1]) == {"runID": 41, "environmentID": "4", "orgID": "org-9"}
    assert server.reached[0].url.path == "/scheduler/cancelRun"
