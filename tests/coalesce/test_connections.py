"""Connections over real sockets, on httpx's own transport (the one runner's clients
use): what a server does to a connection reaches the client as the httpx error the
retry rules expect, so they keep telling "never sent" from "maybe carried out"; kept-
alive connections a server closed or spoke on while idle are not used again; TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import httpx
import pytest

from runner.coalesce import ClientPool
from runner.coalesce.transport import SpreadTransport
from runner.secrets import Secret

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

URL = "https://app.coalescesoftware.io"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def _server(
    handler: Handler, context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """A server on loopback; yields its port and the number of each connection's requests."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield str(port), connections


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (RST), not a goodbye (FIN)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _client(scheme: str, port: str, **options: object) -> httpx.AsyncClient:
    """An httpx client on its default transport: the one runner's clients use."""
    return httpx.AsyncClient(base_url=f"{scheme}://127.0.0.1:{port}", **options)  # type: ignore[arg-type]


async def test_requests_share_a_kept_alive_connection() -> None:
    async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            assert body.endswith(b'{"runDetails":1}')
            writer.write(OK)
            await writer.drain()

    async with _server(answer_each) as (port, connections), _client("http", port) as client:
        for _ in range(3):
            response = await client.post("/scheduler/startRun", content=b'{"runDetails":1}')
            assert response.json() == {}
    assert len(connections) == 1


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    """Sending a startRun into a connection the server has closed would leave its outcome
    unknown: the client must notice the close, even before its event loop has."""
    closed = asyncio.Event()

    async def answer_once_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async with (
        _server(answer_once_then_close) as (port, connections),
        _client("http", port) as client,
    ):
        await client.post("/scheduler/startRun", content=b"{}")
        await closed.wait()
        response = await client.post("/scheduler/startRun", content=b"{}")
    assert response.status_code == 200
    assert len(connections) == 2


async def test_a_connection_with_unasked_data_while_idle_is_not_used_again() -> None:
    """A server may send a 408 on an idle connection before closing it: that answer must
    not be taken for the next request's."""
    answered, timed_out = asyncio.Event(), asyncio.Event()
    timeout = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

    async def answer_then_time_out(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if len(connections) > 1:  # the next connection is served normally
            await _answer_each(reader, writer)
            return
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        await answered.wait()
        writer.write(timeout)  # and no FIN yet
        await writer.drain()
        timed_out.set()
        await reader.read()

    async with (
        _server(answer_then_time_out) as (port, connections),
        _client("http", port) as client,
    ):
        await client.post("/scheduler/startRun", content=b"{}")
        answered.set()
        await timed_out.wait()
        response = await client.post("/scheduler/startRun", content=b"{}")
    assert response.status_code == 200
    assert len(connections) == 2


async def test_an_answer_followed_by_a_reset_is_still_read() -> None:
    """Data that arrived before the connection broke is handed over before the error."""

    async def answer_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        writer.transport.abort()

    async with _server(answer_then_reset) as (port, _), _client("http", port) as client:
        response = await client.post("/scheduler/startRun", content=b"{}")
    assert response.json() == {}


async def test_a_request_given_up_on_is_not_sent_any_further() -> None:
    """After a write timeout, closing the connection drops what was still queued: the
    server must not get the rest of a request the client reported as failed."""
    body = b"x" * (16 * 1024 * 1024)
    received = asyncio.Queue[int]()
    go = asyncio.Event()

    async def read_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        total = 0
        while chunk := await _read_some(reader):
            total += len(chunk)
        await received.put(total)

    timeout = httpx.Timeout(5.0, write=0.05)
    async with _server(read_late) as (port, _):
        async with _client("http", port, timeout=timeout) as client:
            with pytest.raises(httpx.WriteTimeout):
                await client.post("/scheduler/startRun", content=body)
        go.set()
        assert await received.get() < len(body)


async def _read_some(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(1024 * 1024)
    except ConnectionError:
        return b""


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with _server(lambda r, w: asyncio.sleep(0)) as (port, _):
        pass  # the port is closed again
    async with _client("http", port) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("/scheduler/startRun", content=b"{}")


async def test_a_server_that_hangs_up_without_answering_is_a_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async with _server(hang_up) as (port, _), _client("http", port) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/scheduler/startRun", content=b"{}")


async def test_a_silent_server_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def stay_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await release.wait()

    async with _server(stay_silent) as (port, _):
        async with _client("http", port, timeout=httpx.Timeout(5.0, read=0.05)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/scheduler/startRun", content=b"{}")
        release.set()


async def test_a_reset_connection_is_a_read_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        _reset(writer)

    async with _server(reset) as (port, _), _client("http", port) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.post("/scheduler/startRun", content=b"{}")


# -- TLS ---------------------------------------------------------------------------------


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def _answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            await _read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(OK)
        await writer.drain()


async def test_tls_to_a_trusted_server(certificate: tuple[Path, Path]) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    served = _server(_answer_each, _server_context(certificate))
    async with served as (port, connections), _client("https", port, verify=trusted) as client:
        for _ in range(2):
            assert (await client.get("/api/v1/runs")).json() == {}
    assert len(connections) == 1


async def test_tls_to_an_untrusted_server_is_a_connect_error(
    certificate: tuple[Path, Path],
) -> None:
    """A failed certificate check happens before anything is sent: a connect error."""
    served = _server(_answer_each, _server_context(certificate))
    async with served as (port, _), _client("https", port) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post("/scheduler/startRun", content=b"{}")


# -- what runner's clients are built on ---------------------------------------------------


async def test_runner_clients_use_httpx_own_transport() -> None:
    """No network layer of our own under the retry rules: httpx's transport, as tested
    above, is the one runner's clients send through; many connections are spread over
    several of its pools, through httpx's public transport argument."""
    async with ClientPool(environ={}, max_connections=10) as pool:
        client = pool.client(URL, Secret("T"))
        transport = client._http._transport_for_url(httpx.URL("https://app.coalescesoftware.io"))
        assert isinstance(transport, SpreadTransport)
        assert [type(t) for t in transport.transports] == [httpx.AsyncHTTPTransport] * 2
    async with ClientPool(environ={}, max_connections=5) as pool:
        client = pool.client(URL, Secret("T"))
        assert type(client._http._transport_for_url(httpx.URL(URL))) is httpx.AsyncHTTPTransport


async def test_requests_go_to_the_pool_with_the_fewest_in_flight() -> None:
    release = asyncio.Event()
    reached: list[int] = []

    def pool(index: int) -> httpx.AsyncBaseTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            reached.append(index)
            await release.wait()
            return httpx.Response(200, json={})

        return httpx.MockTransport(handle)

    spread = SpreadTransport([pool(0), pool(1), pool(2)])
    async with httpx.AsyncClient(transport=spread, base_url="http://x") as client:
        sending = [asyncio.ensure_future(client.get("/")) for _ in range(6)]
        while len(reached) < 6:
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*sending)
    assert sorted(reached) == [0, 0, 1, 1, 2, 2]


async def test_proxies_from_the_environment_are_still_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    async with ClientPool(environ={}) as pool:
        client = pool.client("https://app.coalescesoftware.io", Secret("T"))
        http = client._http
        request = http.build_request("GET", "https://app.coalescesoftware.io/api/v1/runs")
        proxied = http._transport_for_url(request.url)
        assert isinstance(proxied, httpx.AsyncHTTPTransport)
        assert isinstance(proxied._pool, httpcore.AsyncHTTPProxy)


def test_it_runs_on_uvloop_too() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def exchange() -> int:
        async with _server(_answer_each) as (port, _), _client("http", port) as client:
            return (await client.get("/api/v1/runs")).status_code

    assert uvloop.run(exchange()) == 200
