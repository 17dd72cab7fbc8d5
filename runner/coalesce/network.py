"""Sockets for httpx on asyncio's own transports, without anyio in between.

httpx sends through httpcore, which reaches sockets through a "network backend"; on
asyncio its default goes through anyio, whose per-call bookkeeping (cancel scopes, a
dict of socket attributes rebuilt on every look, a ``getpeername`` each time) costs
about a fifth of the client's CPU per request when hundreds of runs are fired at once.
This backend does the same job on asyncio's transports: the HTTP/1.1 protocol, the
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
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

import httpcore
import httpx

__all__ = ["AsyncioBackend", "AsyncioStream", "use_asyncio_streams"]

log = logging.getLogger(__name__)

# How long a dual-stack host's first address gets before the next one is tried too
# (RFC 8305's recommended 250 ms, as anyio does).
_HAPPY_EYEBALLS_DELAY = 0.25

SocketOption = Any  # httpcore's own alias is private; never passed by runner


class _Connection(asyncio.Protocol):
    """The socket's side of a stream: what arrived, and whether it ended or broke.

    Unlike asyncio's StreamReader it hands out the data it holds before an error that
    came after it, and shows what it holds to :meth:`AsyncioStream._is_readable`. It
    never pauses reading: answers are small and read whole, and a TLS transport on
    uvloop that is paused when the server hangs up loses what it held back.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False  # the server closed its side, or the connection is gone
        self.error: Exception | None = None
        self.closed_here = False  # aclose() was called: nothing more is read or written
        self._writing_paused = False
        # One waiter for reading, one for writing: a wake-up for one never takes the
        # place of the other's.
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        _wake(self._read_waiter)

    def eof_received(self) -> bool:
        self.ended = True
        self._wake_all()
        return False  # close our side too: a request is never sent after the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = self.error or exc
        self._wake_all()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._write_waiter)

    async def readable(self) -> None:
        """Until there is data, the end of the stream, or an error."""
        while not self.buffer and not self.ended and not self.closed_here:
            self._read_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None

    async def writable(self) -> None:
        """Until the transport takes more data (or the connection is gone)."""
        while self._writing_paused and not self.ended and not self.closed_here:
            self._write_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        return data

    def _wake_all(self) -> None:
        _wake(self._read_waiter)
        _wake(self._write_waiter)

    def _transport(self) -> asyncio.Transport:
        assert self.transport is not None
        return self.transport


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, on an asyncio transport."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._poll: Callable[[], bool] | None = None  # made on the first look

    @property
    def _transport(self) -> asyncio.Transport:
        return self._connection._transport()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        try:
            async with asyncio.timeout(timeout):
                await connection.readable()
        except TimeoutError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        if connection.closed_here:
            raise httpcore.ReadError("the connection was closed by this client")
        if connection.buffer:  # what arrived before any error is handed out first
            return connection.take(max_bytes)
        if connection.error is not None:
            raise httpcore.ReadError(_describe(connection.error)) from connection.error
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        connection = self._connection
        self._refuse_if_gone()
        try:
            self._transport.write(buffer)
        except RuntimeError as error:  # uvloop, on a transport that just closed
            raise httpcore.WriteError(_describe(error)) from error
        try:
            async with asyncio.timeout(timeout):
                await connection.writable()
        except TimeoutError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        self._refuse_if_gone()

    def _refuse_if_gone(self) -> None:
        # asyncio drops writes to a connection it lost, without a word: say so instead.
        connection = self._connection
        if connection.error is not None:
            raise httpcore.WriteError(_describe(connection.error)) from connection.error
        if connection.closed_here or connection.ended or self._transport.is_closing():
            raise httpcore.WriteError("the connection was closed")

    async def aclose(self) -> None:
        # Aborted, not closed: nothing still queued goes out after the client gave up on
        # a request (it may be looked up and sent again), no TLS goodbye keeps it waiting,
        # and the socket is released at once.
        connection = self._connection
        connection.closed_here = True
        connection._wake_all()  # a read or write waiting on it fails now
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        connection = self._connection
        if connection.ended or self._transport.is_closing():
            await self.aclose()
            raise httpcore.ConnectError("the server closed the connection before TLS began")
        try:
            async with asyncio.timeout(timeout):
                secure = await loop.start_tls(
                    self._transport, connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as error:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:  # ssl.SSLError (a failed certificate check) included
            await self.aclose()
            raise httpcore.ConnectError(_describe(error)) from error
        if secure is None:  # the server closed the connection during the handshake
            await self.aclose()
            raise httpcore.ConnectError("the server closed the connection during the TLS handshake")
        connection.transport = secure
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._is_readable()
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None

    def _is_readable(self) -> bool:
        """True when an idle connection has something to read: data (say a 408 sent
        before closing), or the server's goodbye. httpcore then drops it instead of
        sending a request into a connection the server is done with (which would leave
        a startRun's outcome unknown, or answer it with the stale data)."""
        connection = self._connection
        if connection.buffer or connection.ended or self._transport.is_closing():
            return True
        # What the event loop has not read yet. httpcore asks about every idle
        # connection for each request: the poll is set up once per connection.
        if self._poll is None:
            sock = self._transport.get_extra_info("socket")
            fileno = -1 if sock is None else sock.fileno()
            if fileno < 0:
                return True
            self._poll = _readable_check(fileno)
        return self._poll()


def _readable_check(fileno: int) -> Callable[[], bool]:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return lambda: bool(poller.poll(0))
    return lambda: bool(select.select([fileno], [], [], 0)[0])  # Windows


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
        return await _connect(_open(host, port, local_address), timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await _connect(_open_unix(path), timeout, socket_options)

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


async def _connect(
    opening: Coroutine[Any, Any, _Connection],
    timeout: float | None,
    socket_options: Iterable[SocketOption] | None,
) -> AsyncioStream:
    """The stream of the connection ``opening`` makes, with httpcore's connect errors."""
    if socket_options:
        opening.close()
        raise httpcore.UnsupportedProtocol("socket options are not supported here")
    try:
        async with asyncio.timeout(timeout):
            connection = await opening
    except TimeoutError as error:
        raise httpcore.ConnectTimeout(str(error)) from error
    except OSError as error:  # refused, unreachable, unknown host
        raise httpcore.ConnectError(_describe(error)) from error
    return AsyncioStream(connection)


async def _open_unix(path: str) -> _Connection:
    _, connection = await asyncio.get_running_loop().create_unix_connection(_Connection, path)
    return connection


async def _open(host: str, port: int, local_address: str | None) -> _Connection:
    loop = asyncio.get_running_loop()
    local_addr = (local_address, 0) if local_address else None
    if isinstance(loop, asyncio.BaseEventLoop):
        # Happy eyeballs: asyncio's loop has it; uvloop's tries the addresses in turn.
        _, connection = await loop.create_connection(
            _Connection,
            host,
            port,
            local_addr=local_addr,
            happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
        )
    else:
        _, connection = await loop.create_connection(_Connection, host, port, local_addr=local_addr)
    return connection


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
