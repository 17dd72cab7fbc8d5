"""Proxies: loopback and sim:// never go through one (it would see the token); a proxy
variable that cannot be used is a clear error naming the variable, never its URL."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import AsyncIterator

import pytest

from runner.coalesce import ClientPool, CoalesceClient
from runner.errors import RunnerError
from runner.secrets import Secret

from .fakes import URL, token

PAGE = b'{"data": [], "next": null}'
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"]


class Listener:
    """Counts connections; answers every request with an empty page."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.received += head
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(PAGE), PAGE))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def listen(listener: Listener, host: str) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(listener.handle, host, 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def fake_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Listener]:
    """A proxy on a real socket, named by every proxy variable; it must see nothing."""
    proxy = Listener()
    server, port = await listen(proxy, "127.0.0.1")
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        yield proxy
    finally:
        server.close()


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("bind", "host"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", "localhost"),
        pytest.param(
            "::1",
            "[::1]",
            marks=pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
)
async def test_loopback_never_goes_through_a_proxy(
    fake_proxy: Listener, bind: str, host: str
) -> None:
    coalesce = Listener()
    server, port = await listen(coalesce, bind)
    try:
        async with ClientPool(environ={}) as pool:
            page = await asyncio.wait_for(
                pool.client(f"http://{host}:{port}", token()).list_runs(), 10
            )
        async with CoalesceClient(f"http://{host}:{port}", token(), environ={}) as client:
            await asyncio.wait_for(client.list_runs(), 10)
    finally:
        server.close()
    assert page.data == []
    assert coalesce.connections >= 1
    assert fake_proxy.connections == 0
    assert fake_proxy.received == b""


async def test_the_embedded_simulator_never_goes_through_a_proxy(fake_proxy: Listener) -> None:
    from runner.runtime import Runtime

    sim = pytest.importorskip("runner.sim")
    async with Runtime(environ={}).pool() as pool:
        client = pool.client("sim://", Secret(sim.DEMO_TOKEN))
        environments = await asyncio.wait_for(client.list_environments(), 10)
    assert environments
    assert fake_proxy.connections == 0


async def test_a_remote_url_still_goes_through_the_proxy(
    fake_proxy: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ClientPool(environ={}) as pool:
        client = pool.client(URL, token())
        with pytest.raises(RunnerError):  # the fake proxy cannot tunnel TLS
            await asyncio.wait_for(client.get_environment("4"), 10)
    assert fake_proxy.connections >= 1
    assert b"CONNECT app.coalescesoftware.io:443" in fake_proxy.received


# ------------------------------------------------------------------ unusable settings


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HTTP_PROXY"])
@pytest.mark.parametrize(
    "value",
    [
        "http://user:pa55-CANARY@[::1",
        "http://user:pa55-CANARY@proxy:port",
        "ftp://user:pa55-CANARY@proxy:21",
        "http://user:pa55-CANARY@:8080",
    ],
)
def test_an_unusable_proxy_url_is_a_clear_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    for other in [*PROXY_VARIABLES, "HTTPS_PROXY", "https_proxy", "all_proxy"]:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(RunnerError) as caught:
        ClientPool(environ={}).client(URL, token())
    message = str(caught.value)
    assert name in message
    assert "CANARY" not in message
    assert "pa55" not in message
    assert "\n  hint:" in message and message.count("\n") == 1  # one line, and a hint


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks_proxy_without_socksio_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    if importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed here")
    monkeypatch.setenv("ALL_PROXY", f"{scheme}://user:pa55-CANARY@127.0.0.1:1080")
    with pytest.raises(RunnerError) as caught:
        ClientPool(environ={}).client(URL, token())
    assert "ALL_PROXY" in caught.value.message
    assert "socksio" in caught.value.message
    assert "CANARY" not in str(caught.value)


def test_an_unusable_proxy_does_not_matter_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://[::1")
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    ClientPool(environ={}).client("http://127.0.0.1:8765", token())


def test_a_scheme_less_proxy_is_read_as_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    ClientPool(environ={}).client(URL, token())  # as httpx reads it: no error
