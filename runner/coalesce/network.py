"""Sockets for httpx on asyncio's own streams, without anyio in between.

httpx sends through httpcore, which reaches sockets through a "network backend"; on
asyncio its default goes through anyio, whose per-call bookkeeping (cancel scopes, a
dict of socket attributes rebuilt on every look, a ``getpeername`` each time) costs
about a third of the client's CPU per request when hundreds of runs are fired at once.
This backend does the same job with asyncio streams: the HTTP/1.1 protocol, the
connection pool and keep-alive stay httpcore's, and every failure is raised as the
httpcore error the anyio backend raises for it, so the client's retry rules (which
tell "never sent" from "maybe carried out") see exactly what they saw before.

:func:`use_asyncio_streams` puts it under an ``httpx.AsyncClient``'s direct
connections; connections through a proxy (``HTTPS_PROXY``) keep httpx's own.
"""

from __future__ import annotations

import asyncio
import logging
import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "use_asyncio_streams"]

log = logging.getLogger(__name__)

# How long a dual-stack host's first address gets before the next one is tried too
# (RFC 8305's recommended 250 ms, as anyio does).
_HAPPY_EYEBALLS_DELAY = 0.25

SocketOption = Any  # httpcore's own alias is private; never passed by runner


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, as an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._poller: select.poll | None = None  # made on the first look (see _is_readable)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ReadError(_describe(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                # drain() raises if the connection was lost, even when write() had
                # nothing to complain about (asyncio drops writes to a lost socket).
                await self._writer.drain()
        except TimeoutError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.WriteError(_describe(error)) from error

    async def aclose(self) -> None:
        # Not waiting for the close to finish: httpcore closes connections while
        # shielded from cancellation, and a TLS goodbye could keep it waiting (for up to
        # 30 s, with the socket left open if the event loop ends first).
        if self._is_tls():
            self._writer.transport.abort()
        else:
            self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as error:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:  # ssl.SSLError (a failed certificate check) included
            await self.aclose()
            raise httpcore.ConnectError(_describe(error)) from error
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._is_readable()
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None

    def _is_tls(self) -> bool:
        return self._writer.get_extra_info("ssl_object") is not None

    def _is_readable(self) -> bool:
        """True when an idle connection has something to read: data, or the server's
        goodbye. httpcore then drops it instead of sending a request into a socket the
        server has closed (which would leave a startRun's outcome unknown)."""
        if self._reader.at_eof() or self._reader.exception() is not None:
            return True
        if self._writer.is_closing():
            return True
        # What the event loop has not read yet, or the end of the stream it has seen
        # (asyncio stops reading there and leaves the socket readable). httpcore asks
        # about every idle connection for each request: one poll object per connection.
        if self._poller is None:
            sock = self._writer.get_extra_info("socket")
            fileno = -1 if sock is None else sock.fileno()
            if fileno < 0:
                return True
            self._poller = select.poll()
            self._poller.register(fileno, select.POLLIN)
        return bool(self._poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`AsyncioStream` connections."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if socket_options:
            raise httpcore.UnsupportedProtocol("socket options are not supported here")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await _open(host, port, local_address)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:  # refused, unreachable, unknown host
            raise httpcore.ConnectError(_describe(error)) from error
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if socket_options:
            raise httpcore.UnsupportedProtocol("socket options are not supported here")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ConnectError(_describe(error)) from error
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_streams(client: httpx.AsyncClient) -> bool:
    """Make ``client``'s direct connections use :class:`AsyncioBackend`; True if done.

    httpx has no public way to choose httpcore's network backend without giving up the
    proxies it reads from the environment, so this reaches into the client's default
    transport. If a new httpx arranges that differently, nothing is changed (and a test
    of this package fails, so that the speed is not lost without anyone knowing).
    """
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        log.debug("httpx's transport has an unexpected shape; keeping its network backend")
        return False
    pool._network_backend = AsyncioBackend()
    return True


async def _open(
    host: str, port: int, local_address: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    local_addr = (local_address, 0) if local_address else None
    if isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
        # Happy eyeballs: asyncio's loop has it; uvloop's tries the addresses in turn.
        return await asyncio.open_connection(
            host, port, local_addr=local_addr, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY
        )
    return await asyncio.open_connection(host, port, local_addr=local_addr)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
