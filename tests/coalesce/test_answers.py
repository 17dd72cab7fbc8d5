"""Answers are validated before they are trusted, certificate failures are reported at
once, and a token that cannot be a header value is a clear error."""

from __future__ import annotations

import ssl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.coalesce import (
    Ambiguous,
    CoalesceAPIError,
    CoalesceClient,
    CoalesceUnreachable,
    Started,
)
from runner.coalesce.requests import RerunRequest, StartRunRequest, WriteRequest
from runner.errors import RunnerError
from runner.secrets import Secret

from .fakes import URL, FakeClock, FakeCoalesce, Step, answer, make_client

WRITES: dict[str, WriteRequest] = {
    "start_run": StartRunRequest("4", job_id="7"),
    "rerun": RerunRequest(41),
}
MAX_RUN_ID = 2**63 - 1


def created_with(raw_counter: str) -> Step:
    """The server creates a run and answers with ``raw_counter`` as JSON text."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        server.created += 1
        return httpx.Response(200, content=f'{{"runCounter": {raw_counter}}}'.encode())

    return step


# ------------------------------------------------------------------ runCounter


@pytest.mark.parametrize(
    "raw",
    ["true", "false", "1.5", "1.0", '"7"', "0", "-1", "100000000000000000000000000000",
     str(MAX_RUN_ID + 1), "null", "[]", "{}", "1e3"],
)  # fmt: skip
@pytest.mark.parametrize("call", ["start_run", "rerun"])
async def test_an_unusable_run_counter_is_ambiguous_never_a_crash(raw: str, call: str) -> None:
    server = FakeCoalesce([created_with(raw)])
    async with make_client(server) as client:
        outcome = await client.fire(WRITES[call])
    assert isinstance(outcome, Ambiguous)
    assert outcome.status == 200
    assert "runCounter" in outcome.reason
    assert "1 to 2**63-1" in outcome.reason
    assert len(server.attempted) == 1


@given(st.integers(min_value=1, max_value=MAX_RUN_ID))
async def test_every_valid_run_counter_is_taken_as_is(counter: int) -> None:
    server = FakeCoalesce([created_with(str(counter))])
    async with make_client(server) as client:
        assert await client.fire(WRITES["start_run"]) == Started(run_counter=counter)


@given(st.integers().filter(lambda n: not 1 <= n <= MAX_RUN_ID))
async def test_every_out_of_range_run_counter_is_ambiguous(counter: int) -> None:
    server = FakeCoalesce([created_with(str(counter))])
    async with make_client(server) as client:
        assert isinstance(await client.fire(WRITES["start_run"]), Ambiguous)


# ------------------------------------------------------------------ run ids in GET answers


@pytest.mark.parametrize("bad_id", [True, 1.5, 0, -1, 10**29, "abc", "+4", None])
async def test_a_bad_run_id_in_a_run_list_is_an_unexpected_shape(bad_id: object) -> None:
    page = {"data": [{"id": bad_id, "runStatus": "running"}], "next": None}
    server = FakeCoalesce([answer(200, page)])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError, match="unexpected shape"):
            await client.list_runs(environment_id="4")


@pytest.mark.parametrize("bad_id", [True, 2.0, 0, 10**29, str(10**29)])
async def test_a_bad_run_id_in_a_run_is_an_unexpected_shape(bad_id: object) -> None:
    server = FakeCoalesce([answer(200, {"id": bad_id, "runStatus": "failed"})])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError, match="unexpected shape"):
            await client.get_run(5)


async def test_a_run_id_written_as_digits_is_read() -> None:
    page = {"data": [{"id": "42", "runStatus": "running"}], "next": None}
    server = FakeCoalesce([answer(200, page)])
    async with make_client(server) as client:
        runs = await client.list_runs(environment_id="4")
    assert [run.id for run in runs.data] == [42]


# ------------------------------------------------------------------ TLS certificates


def untrusted_certificate() -> Step:
    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(
            1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"
        )
        raise httpx.ConnectError("certificate verify failed", request=request) from cause

    return step


async def test_a_certificate_failure_fails_a_read_at_once_with_a_hint() -> None:
    server = FakeCoalesce([untrusted_certificate()])
    clock = FakeClock()
    async with make_client(server, clock) as client:
        with pytest.raises(CoalesceUnreachable) as caught:
            await client.list_runs(environment_id="4")
    assert len(server.attempted) == 1
    assert clock.sleeps == []
    assert "certificate was not trusted" in caught.value.message
    assert caught.value.hint is not None and "SSL_CERT_FILE" in caught.value.hint


@pytest.mark.parametrize("call", ["start_run", "rerun"])
async def test_a_certificate_failure_fails_a_write_at_once(call: str) -> None:
    server = FakeCoalesce([untrusted_certificate()])
    async with make_client(server) as client:
        with pytest.raises(CoalesceUnreachable) as caught:
            await client.fire(WRITES[call])
    assert len(server.attempted) == 1
    assert "certificate was not trusted" in caught.value.message
    assert "Nothing was started" in caught.value.message


# ------------------------------------------------------------------ the token


@pytest.mark.parametrize(
    "value",
    ["tökén-CANARY", "CANARY\nX-Injected: 1", "CANARY\r", "CANARY\x00", "CANARY\t", " CANARY"],
)
def test_a_token_that_is_not_a_header_value_is_a_clear_error(value: str) -> None:
    with pytest.raises(RunnerError) as caught:
        CoalesceClient(URL, Secret(value), environ={}, token_source="COALESCE_TOKEN")
    message = str(caught.value)
    assert "not a valid HTTP header value" in message
    assert "COALESCE_TOKEN" in message
    assert "CANARY" not in message
    assert value not in message


async def test_a_clean_token_is_sent_as_a_bearer_header() -> None:
    server = FakeCoalesce([answer(200, {"data": [], "next": None})])
    async with CoalesceClient(
        URL, Secret("abc.DEF-123_~+/="), transport=server.transport(), environ={}
    ) as client:
        await client.list_runs()
    assert server.reached[0].headers["authorization"] == "Bearer abc.DEF-123_~+/="
