"""Limits a hostile or broken server cannot get around, over real sockets: a total
deadline per request, capped answers, certificate failures reported at once, timeouts
from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.coalesce import (
    Ambiguous,
    ClientPool,
    Clock,
    CoalesceAPIError,
    CoalesceClient,
    CoalesceUnreachable,
    RetryPolicy,
)
from runner.coalesce.client import MAX_ANSWER_BYTES
from runner.coalesce.requests import RerunRequest, StartRunRequest, WriteRequest
from runner.errors import RunnerError

from .fakes import URL, FakeCoalesce, answer, make_client, token

WRITES: dict[str, WriteRequest] = {
    "start_run": StartRunRequest("4", job_id="7"),
    "rerun": RerunRequest(41),
}
START = WRITES["start_run"]
PAGE = b'{"data": [], "next": null}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def no_wait(seconds: float) -> None:
    """Retry waits take no time (the deadline is what is under test)."""


@dataclass
class Server:
    """A plain TCP server on 127.0.0.1 running ``behaviour`` for each request."""

    behaviour: Callable[[asyncio.StreamWriter], Awaitable[None]]
    requests: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            self.requests += 1
            await self.behaviour(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Server], Awaitable[str]]]:
    servers: list[tuple[asyncio.Server, Server]] = []

    async def start(server: Server) -> str:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append((listening, server))
        return f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"

    yield start
    for listening, server in servers:
        listening.close()
        for task in list(server.tasks):
            task.cancel()


def trickle(*, in_headers: bool) -> Callable[[asyncio.StreamWriter], Awaitable[None]]:
    """One byte every 20 ms, for ever: each read gets data long before its timeout."""

    async def behaviour(writer: asyncio.StreamWriter) -> None:
        if in_headers:
            writer.write(b"HTTP/1.1 200 OK\r\nx-slow: ")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n ")
        while True:
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"a" if in_headers else b" ")

    return behaviour


def pool_with(environ: dict[str, str], **kwargs: Any) -> ClientPool:
    return ClientPool(environ=environ, clock=Clock(sleep=no_wait), **kwargs)


# ------------------------------------------------------------------ the deadline


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
async def test_a_trickling_read_is_cut_at_the_deadline_and_retried(
    serve: Callable[[Server], Awaitable[str]], in_headers: bool
) -> None:
    server = Server(trickle(in_headers=in_headers))
    url = await serve(server)
    policy = RetryPolicy(max_attempts=2, base_delay=0.0)
    async with pool_with({"RUNNER_REQUEST_DEADLINE": "0.3"}, read_retry=policy) as pool:
        client = pool.client(url, token())
        with pytest.raises(CoalesceUnreachable) as caught:
            await asyncio.wait_for(client.list_runs(environment_id="4"), 30)
    assert server.requests == 2  # two tries, each cut at the deadline
    assert "RUNNER_REQUEST_DEADLINE" in caught.value.message


async def test_plan_against_a_trickling_coalesce_ends_with_an_error_naming_the_deadline(
    serve: Callable[[Server], Awaitable[str]], tmp_path: Path
) -> None:
    server = Server(trickle(in_headers=False))
    url = await serve(server)
    spec = tmp_path / "specs" / "prod.yaml"
    spec.parent.mkdir()
    spec.write_text(
        f'version: 1\nenvironmentID: "4"\nname: prod\ncoalesce:\n  url: "{url}"\n'
        "runs:\n  - {name: nightly, jobID: '7'}\n"
    )
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "COALESCE_TOKEN": "tok-trickle-test",
        "RUNNER_REQUEST_DEADLINE": "0.3",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", "plan", "specs", cwd=tmp_path, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), 120)  # a hang guard only
    assert child.returncode == 1, out.decode()
    assert "RUNNER_REQUEST_DEADLINE" in err.decode()
    assert "Traceback" not in err.decode()
    assert server.requests >= 1


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
async def test_a_trickling_write_is_ambiguous_at_the_deadline_and_not_resent(
    serve: Callable[[Server], Awaitable[str]], in_headers: bool
) -> None:
    server = Server(trickle(in_headers=in_headers))
    url = await serve(server)
    async with pool_with({"RUNNER_REQUEST_DEADLINE": "0.3"}) as pool:
        client = pool.client(url, token())
        outcome = await asyncio.wait_for(client.fire(START), 10)
    assert isinstance(outcome, Ambiguous)
    assert "0.3 s" in outcome.reason
    assert server.requests == 1


async def test_the_read_timeout_comes_from_the_environment(
    serve: Callable[[Server], Awaitable[str]],
) -> None:
    async def hold(writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    server = Server(hold)
    url = await serve(server)
    environ = {"RUNNER_READ_TIMEOUT": "0.2", "RUNNER_REQUEST_DEADLINE": "60"}
    async with pool_with(environ) as pool:
        outcome = await asyncio.wait_for(pool.client(url, token()).fire(START), 10)
    assert isinstance(outcome, Ambiguous)
    assert "no answer in time" in outcome.reason
    assert server.requests == 1


async def test_the_deadline_of_an_explicit_argument_wins(
    serve: Callable[[Server], Awaitable[str]],
) -> None:
    server = Server(trickle(in_headers=False))
    url = await serve(server)
    async with pool_with({"RUNNER_REQUEST_DEADLINE": "600"}, deadline=0.2) as pool:
        outcome = await asyncio.wait_for(pool.client(url, token()).fire(START), 10)
    assert isinstance(outcome, Ambiguous)


async def test_a_quick_answer_is_unaffected_by_the_deadline(
    serve: Callable[[Server], Awaitable[str]],
) -> None:
    async def quick(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(PAGE), PAGE))
        await writer.drain()

    server = Server(quick)
    url = await serve(server)
    async with pool_with({"RUNNER_REQUEST_DEADLINE": "5"}) as pool:
        page = await pool.client(url, token()).list_runs()
    assert page.data == []


@pytest.mark.parametrize("name", ["RUNNER_READ_TIMEOUT", "RUNNER_REQUEST_DEADLINE"])
@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf", "nan", "1e9", "10 s"])
def test_a_bad_timeout_in_the_environment_is_a_clear_error(name: str, value: str) -> None:
    with pytest.raises(RunnerError) as caught:
        ClientPool(environ={name: value})
    assert name in caught.value.message
    assert caught.value.hint is not None


def test_timeouts_are_read_from_os_environ_without_an_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNNER_REQUEST_DEADLINE", "never")
    with pytest.raises(RunnerError, match="RUNNER_REQUEST_DEADLINE"):
        ClientPool()
    with pytest.raises(RunnerError, match="RUNNER_REQUEST_DEADLINE"):
        CoalesceClient(URL, token())


# ------------------------------------------------------------------ capped answers


class Counted:
    """An endless answer body, counting what the client pulled from it."""

    def __init__(self, chunk: int = 1024 * 1024) -> None:
        self.chunk = b"x" * chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.pulled += 1
            yield self.chunk


def endless(status: int, body: Counted, *, declared: int | None = None) -> FakeCoalesce:
    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        headers = {"content-length": str(declared)} if declared is not None else None
        return httpx.Response(status, content=body, headers=headers)

    return FakeCoalesce([step])


async def test_an_endless_read_answer_is_not_read_whole_and_not_retried() -> None:
    body = Counted()
    server = endless(200, body)
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.list_runs(environment_id="4")
    assert "16 MiB" in caught.value.message
    assert body.pulled <= MAX_ANSWER_BYTES // len(body.chunk) + 2
    assert len(server.attempted) == 1


async def test_a_declared_oversize_answer_is_refused_before_reading() -> None:
    body = Counted()
    server = endless(200, body, declared=50 * 1024 * 1024)
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError, match="16 MiB"):
            await client.get_environment("4")
    assert body.pulled == 0


@pytest.mark.parametrize("call", ["start_run", "rerun"])
async def test_an_oversize_answer_to_a_write_is_ambiguous(call: str) -> None:
    server = endless(200, Counted())
    async with make_client(server) as client:
        outcome = await client.fire(WRITES[call])
    assert isinstance(outcome, Ambiguous)
    assert outcome.status == 200
    assert len(server.attempted) == 1


async def test_an_oversize_error_answer_is_cut_and_still_reported() -> None:
    body = Counted(chunk=64 * 1024)
    server = endless(404, body)
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_environment("4")
    assert caught.value.status == 404
    assert body.pulled <= 3


async def test_an_answer_just_under_the_cap_is_read() -> None:
    filler = "x" * (MAX_ANSWER_BYTES - 100)
    server = FakeCoalesce([answer(200, {"id": "4", "name": "prod", "filler": filler})])
    async with make_client(server) as client:
        environment = await client.get_environment("4")
    assert environment.id == "4"


# ------------------------------------------------------------------ TLS over a real socket


@pytest.mark.parametrize("call", ["list_runs", "start_run"])
async def test_an_untrusted_certificate_is_reported_at_once(
    certificate: tuple[Path, Path], call: str
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.start_tls(context)  # the client refuses the certificate
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        async with pool_with({}) as pool:
            client = pool.client(f"https://127.0.0.1:{port}", token())
            with pytest.raises(CoalesceUnreachable) as caught:
                if call == "list_runs":
                    await asyncio.wait_for(client.list_runs(), 10)
                else:
                    await asyncio.wait_for(client.fire(START), 10)
    finally:
        listening.close()
    assert "certificate was not trusted" in caught.value.message
    assert caught.value.hint is not None and "SSL_CERT_FILE" in caught.value.hint
    assert connections == 1  # tried once, not five times
