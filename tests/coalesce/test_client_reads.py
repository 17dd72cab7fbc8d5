"""GETs: retried on weather (connection errors, timeouts, 429, 5xx), bounded."""

from __future__ import annotations

import email.utils
import urllib.parse

import httpx
import pytest

from runner.coalesce import CoalesceAPIError, CoalesceClient, CoalesceUnreachable, RetryPolicy

from .fakes import TOKEN_VALUE, FakeClock, FakeCoalesce, answer, error, make_client, refuse, token

STATUS = {"runStatus": "running", "runType": "refresh", "runLink": "https://x/runs/1"}


async def test_a_read_retries_after_a_connection_error() -> None:
    server = FakeCoalesce([refuse(), answer(200, STATUS)])
    clock = FakeClock(draw=0.5)
    async with make_client(server, clock) as client:
        status = await client.run_status(1)
    assert status.runStatus == "running"
    assert len(server.attempted) == 2
    assert clock.sleeps == [0.25]  # full jitter: draw * base_delay(0.5) on the first retry


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ReadError])
async def test_a_read_retries_after_timeouts_and_broken_connections(
    exc_type: type[httpx.TransportError],
) -> None:
    server = FakeCoalesce([refuse(exc_type), answer(200, STATUS)])
    async with make_client(server) as client:
        assert (await client.run_status(1)).runStatus == "running"
    assert len(server.attempted) == 2


async def test_a_read_honours_retry_after_seconds_on_429() -> None:
    server = FakeCoalesce([answer(429, headers={"Retry-After": "7"}), answer(200, STATUS)])
    clock = FakeClock()
    async with make_client(server, clock) as client:
        await client.run_status(1)
    assert clock.sleeps == [7.0]


async def test_a_read_honours_retry_after_as_an_http_date() -> None:
    clock = FakeClock()
    when = email.utils.formatdate(clock.wall() + 11, usegmt=True)
    server = FakeCoalesce([answer(429, headers={"Retry-After": when}), answer(200, STATUS)])
    async with make_client(server, clock) as client:
        await client.run_status(1)
    assert clock.sleeps == [11.0]


async def test_a_429_without_retry_after_backs_off_exponentially() -> None:
    server = FakeCoalesce([answer(429), answer(429), answer(429), answer(200, STATUS)])
    clock = FakeClock(draw=1.0)
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0, max_total=100.0)
    async with make_client(server, clock, read_retry=policy) as client:
        await client.run_status(1)
    assert clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_read_retries_on_5xx(status: int) -> None:
    server = FakeCoalesce([error(status, "oops"), answer(200, STATUS)])
    async with make_client(server) as client:
        assert (await client.run_status(1)).runStatus == "running"
    assert len(server.attempted) == 2


async def test_read_retries_stop_after_max_attempts() -> None:
    server = FakeCoalesce([refuse() for _ in range(3)])
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_total=1000.0)
    async with make_client(server, clock, read_retry=policy) as client:
        with pytest.raises(CoalesceUnreachable) as caught:
            await client.run_status(1)
    assert len(server.attempted) == 3
    assert len(clock.sleeps) == 2
    text = str(caught.value)
    assert "app.coalescesoftware.io" in text
    assert "tried 3 times" in text
    assert "GET /scheduler/runStatus" in text


async def test_read_retries_stop_at_the_total_time_bound() -> None:
    server = FakeCoalesce([answer(503) for _ in range(10)])
    clock = FakeClock(draw=1.0)
    policy = RetryPolicy(max_attempts=10, base_delay=10.0, max_delay=10.0, max_total=25.0)
    async with make_client(server, clock, read_retry=policy) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.run_status(1)
    # 10 s + 10 s fit in 25 s; a third wait would end at 30 s.
    assert clock.sleeps == [10.0, 10.0]
    assert len(server.attempted) == 3
    assert caught.value.status == 503
    assert "Coalesce's side" in str(caught.value)


async def test_a_long_retry_after_beyond_the_time_bound_gives_up_at_once() -> None:
    server = FakeCoalesce([answer(429, headers={"Retry-After": "3600"})])
    clock = FakeClock()
    async with make_client(server, clock) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.run_status(1)
    assert clock.sleeps == []
    assert caught.value.status == 429


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(status: int) -> None:
    server = FakeCoalesce([error(status, "no")])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_run(5)
    assert len(server.attempted) == 1
    assert caught.value.status == status


async def test_reads_send_the_token_and_ask_for_json() -> None:
    server = FakeCoalesce([answer(200, {"id": 5, "runStatus": "completed"})])
    async with make_client(server) as client:
        info = await client.get_run(5)
    request = server.reached[0]
    assert request.headers["authorization"] == f"Bearer {TOKEN_VALUE}"
    assert request.headers["accept"] == "application/json"
    assert request.url.path == "/api/v1/runs/5"
    assert info.runStatus == "completed"


async def test_unknown_statuses_and_fields_come_through() -> None:
    server = FakeCoalesce([answer(200, {"runStatus": "throttled", "brandNewField": [1, 2]})])
    async with make_client(server) as client:
        status = await client.run_status(9)
    assert status.runStatus == "throttled"
    assert not status.terminal
    assert server.reached[0].url.params["runCounter"] == "9"


async def test_a_body_that_is_not_json_is_an_error_that_names_the_call() -> None:
    server = FakeCoalesce([answer(200, text="<html>login</html>")])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError, match=r"GET /api/v1/environments/4 .*not JSON"):
            await client.get_environment("4")


async def test_an_answer_of_the_wrong_shape_is_an_error() -> None:
    server = FakeCoalesce([answer(200, {"runType": "refresh"})])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError, match="unexpected shape: runStatus"):
            await client.run_status(1)


async def test_an_id_that_is_not_digits_never_reaches_the_url() -> None:
    server = FakeCoalesce([])
    async with make_client(server) as client:
        with pytest.raises(Exception, match="not a Coalesce id"):
            await client.get_environment("4/../../admin")
    assert server.attempted == []


async def test_listing_detailed_nodes_waits_longer_for_the_answer() -> None:
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json={"data": [{"id": "1", "name": "A"}]})

    async with CoalesceClient(
        "https://app.coalescesoftware.io", token(), transport=httpx.MockTransport(handler)
    ) as client:
        await client.list_nodes("4", detail=True)
        await client.list_nodes("4", detail=False)
    assert seen == [180.0, 60.0]


async def test_an_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeCoalesce([answer(200, {"runStatus": "hibernating"}) for _ in range(2)])
    async with make_client(server) as client:
        await client.run_status(1)
        await client.run_status(1)
    notes = [r.getMessage() for r in caplog.records if "hibernating" in r.getMessage()]
    assert notes == [
        "Coalesce reported the unknown run status 'hibernating'; treating it as running"
    ]


@pytest.mark.parametrize(
    "echoed", [TOKEN_VALUE, urllib.parse.quote(f"Bearer {TOKEN_VALUE}")], ids=["as-is", "url"]
)
async def test_a_run_link_that_echoes_the_token_is_withheld(echoed: str) -> None:
    link = f"https://app.coalescesoftware.io/runs/7?auth={echoed}"
    server = FakeCoalesce([answer(200, {"runStatus": "failed", "runLink": link})])
    async with make_client(server) as client:
        status = await client.run_status(7)
    assert status.runStatus == "failed"
    assert status.runLink is not None and TOKEN_VALUE not in status.runLink
    assert "withheld" in status.runLink


async def test_a_plain_run_link_is_kept() -> None:
    link = "https://app.coalescesoftware.io/runs/7"
    server = FakeCoalesce([answer(200, {"runStatus": "completed", "runLink": link})])
    async with make_client(server) as client:
        assert (await client.run_status(7)).runLink == link
