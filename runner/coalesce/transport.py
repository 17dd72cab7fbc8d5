"""A transport for many requests in flight: httpx's own, several times over.

httpcore's connection pool does work proportional to the connections it holds for
every request it starts or finishes, so one pool of 50 connections with 50 startRuns in
flight spends most of the client's CPU choosing connections: measured with
``tests/bench/bench_fire.py``, 1,000 startRuns take 6.3 s through one pool of 50 and
0.75 s through ten pools of 5. :class:`SpreadTransport` holds several
``httpx.AsyncHTTPTransport`` (public API, httpx's default network layer, every error
exactly as httpx raises it) and hands each request to the one with the fewest in
flight. It goes in through httpx's public ``mounts=`` argument (for ``all://``), so
that the proxies of the environment, which httpx mounts for the URLs they cover, still
take precedence.
"""

from __future__ import annotations

import ssl

import httpx

__all__ = ["CONNECTIONS_EACH", "SpreadTransport", "transport_for_many"]

#: Connections in each of the pools a :class:`SpreadTransport` spreads over.
CONNECTIONS_EACH = 5


class SpreadTransport(httpx.AsyncBaseTransport):
    """Requests spread over ``transports``, each to the one with the fewest in flight
    (taken in turn, a request could wait for a busy pool while another had a free
    connection)."""

    def __init__(self, transports: list[httpx.AsyncBaseTransport]) -> None:
        if not transports:
            raise ValueError("a SpreadTransport needs at least one transport")
        self.transports = transports
        self._in_flight = [0] * len(transports)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.transports)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            return await self.transports[index].handle_async_request(request)
        finally:
            self._in_flight[index] -= 1

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()


def transport_for_many(
    limits: httpx.Limits, verify: ssl.SSLContext
) -> httpx.AsyncBaseTransport | None:
    """A :class:`SpreadTransport` for ``limits.max_connections`` connections, or None
    (httpx's default transport, made by the client) when they fit in one small pool."""
    wanted = limits.max_connections
    if wanted is None or wanted <= CONNECTIONS_EACH:
        return None
    each = httpx.Limits(
        max_connections=CONNECTIONS_EACH, max_keepalive_connections=CONNECTIONS_EACH
    )
    count = -(-wanted // CONNECTIONS_EACH)
    return SpreadTransport(
        [httpx.AsyncHTTPTransport(verify=verify, limits=each) for _ in range(count)]
    )
