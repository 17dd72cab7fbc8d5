"""The send gate: once closed, nothing more leaves the process (first tries, retries,
reads and writes), and retry waits end at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
import pytest

from runner.coalesce import ClientPool, Clock, CoalesceClient, SendGate, SendingStopped
from runner.coalesce.requests import RerunRequest, StartRunRequest, WriteRequest
from runner.errors import RunnerError

from .fakes import FakeClock, FakeCoalesce, answer, create, make_client, token

WRITES: dict[str, WriteRequest] = {
    "start_run": StartRunRequest("4", job_id="7"),
    "rerun": RerunRequest(41),
}


def closing_gate(client: CoalesceClient, status: int = 503) -> FakeCoalesce:
    """A server whose first answer arrives as the gate closes (an interrupt mid-request)."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        client.gate.close()
        return httpx.Response(status, headers={"Retry-After": "1"})

    return FakeCoalesce([step])


def test_sending_stopped_is_a_runner_error() -> None:
    assert issubclass(SendingStopped, RunnerError)
    assert "POST /scheduler/startRun" in str(SendingStopped("POST", "/scheduler/startRun"))


@pytest.mark.parametrize("call", ["start_run", "rerun", "cancel_run", "list_runs", "get_run"])
async def test_a_closed_gate_sends_nothing(call: str) -> None:
    server = FakeCoalesce([create(42)])
    gate = SendGate()
    gate.close()
    async with CoalesceClient(
        "https://app.coalescesoftware.io",
        token(),
        transport=server.transport(),
        environ={},
        gate=gate,
    ) as client:
        with pytest.raises(SendingStopped):
            if call == "cancel_run":
                await client.cancel_run(41, "4")
            elif call in ("start_run", "rerun"):
                await client.fire(WRITES[call])
            elif call == "get_run":
                await client.get_run(41)
            else:
                await client.list_runs(environment_id="4")
    assert server.attempted == []


async def test_a_read_is_not_retried_after_the_gate_closes() -> None:
    clock = FakeClock()
    server = FakeCoalesce([])
    client = make_client(server, clock)
    server.steps.append(closing_gate(client).steps[0])
    async with client:
        with pytest.raises(SendingStopped):
            await client.list_runs(environment_id="4")
    assert len(server.attempted) == 1


async def test_a_write_is_not_retried_after_the_gate_closes() -> None:
    server = FakeCoalesce([])
    client = make_client(server, FakeClock())
    server.steps.append(closing_gate(client, status=429).steps[0])
    async with client:
        with pytest.raises(SendingStopped):
            await client.fire(WRITES["start_run"])
    assert len(server.attempted) == 1


async def test_closing_the_gate_ends_a_retry_wait_at_once() -> None:
    waiting = asyncio.Event()
    never = asyncio.Event()

    async def endless_sleep(seconds: float) -> None:
        waiting.set()
        await never.wait()

    server = FakeCoalesce([answer(503, headers={"Retry-After": "30"})])
    pool = ClientPool(
        transport=server.transport(),
        clock=Clock(sleep=endless_sleep),
        environ={},
    )
    async with pool:
        client = pool.client("https://app.coalescesoftware.io", token())
        assert client.gate is pool.gate
        reading = asyncio.create_task(client.list_runs(environment_id="4"))
        await asyncio.wait_for(waiting.wait(), 5)
        pool.gate.close()
        with pytest.raises(SendingStopped):
            await asyncio.wait_for(reading, 5)
    assert len(server.attempted) == 1


async def test_pause_sleeps_the_whole_time_while_open() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await SendGate().pause(2.5, sleep=sleep)
    assert slept == [2.5]


async def test_pause_returns_at_once_on_a_closed_gate_and_gate_stays_closed() -> None:
    gate = SendGate()
    gate.close()
    gate.close()
    assert gate.closed
    await asyncio.wait_for(gate.pause(3600), 5)


async def test_close_from_another_thread_ends_a_pause() -> None:
    gate = SendGate()
    pausing = asyncio.create_task(gate.pause(3600))
    await asyncio.sleep(0)  # let the pause register
    closer = threading.Thread(target=gate.close)
    closer.start()
    await asyncio.wait_for(pausing, 5)
    closer.join(5)
    assert gate.closed


# ------------------------------------------------------------------ over a real socket


class HeldServer:
    """Counts the requests that reach it; holds the first one until released."""

    def __init__(self) -> None:
        self.requests = 0
        self.first_arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                self.first_arrived.set()
                await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def waiting_for_a_connection(client: CoalesceClient, requests: int) -> None:
    """Until the connection pool holds ``requests`` requests (one sent, others waiting)."""
    pool = client._http._transport._pool  # type: ignore[attr-defined]
    for _ in range(10_000):
        if len(pool._requests) >= requests:
            return
        await asyncio.sleep(0)
    raise AssertionError("the second request never reached the connection pool")


@pytest.fixture
async def held_server() -> AsyncIterator[tuple[HeldServer, str]]:
    held = HeldServer()
    server = await asyncio.start_server(held.handle, "127.0.0.1", 0)
    held.server = server
    port = server.sockets[0].getsockname()[1]
    try:
        yield held, f"http://127.0.0.1:{port}"
    finally:
        held.release.set()
        server.close()


async def test_a_request_waiting_for_a_connection_is_not_sent_after_the_gate_closes(
    held_server: tuple[HeldServer, str],
) -> None:
    held, url = held_server
    pool = ClientPool(
        environ={},
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )
    async with pool:
        client = pool.client(url, token())
        first = asyncio.create_task(client.get_run(1))
        await asyncio.wait_for(held.first_arrived.wait(), 5)
        second = asyncio.create_task(client.get_run(2))  # waits for the only connection
        await waiting_for_a_connection(client, 2)
        pool.gate.close()
        held.release.set()
        results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert isinstance(results[1], SendingStopped)
    assert held.requests == 1
