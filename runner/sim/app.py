"""The simulator as an ASGI application.

:class:`SimApp` wraps the Starlette routes of the Coalesce API (and ``/_sim/``) in a
layer that sees each API request whole: it logs and counts it, injects faults, and can
drop the connection after the request was handled. Dropping needs the server's own
``send``, which is why this layer sits outside Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match

from runner.sim import api, control
from runner.sim.clock import Clock, SimClock, format_time
from runner.sim.demo import demo_world
from runner.sim.engine import Simulator
from runner.sim.faults import FaultDecision
from runner.sim.observe import REDACTED, ParsedBody
from runner.sim.validation import ApiError
from runner.sim.world import World, load_world

__all__ = ["SimApp", "SimulatedDisconnect", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

_ROUTE_PATHS_KEPT = 4096

_FAULT_TEXT = {
    429: "429: Too Many Requests",
    500: "500: Internal Server Error",
    502: "502: Bad Gateway",
    503: "503: Service Unavailable",
    504: "504: Gateway Timeout",
}


class SimulatedDisconnect(httpx.RemoteProtocolError):
    """Raised in-process (through ``httpx.ASGITransport``) where a served simulator would
    close the connection without answering: the client sees a transport error."""


class SimApp:
    """The simulator: an ASGI application with its :class:`Simulator` state."""

    def __init__(self, simulator: Simulator, *, sleep: Sleep = asyncio.sleep) -> None:
        self.simulator = simulator
        self._sleep = sleep
        self._routes: list[BaseRoute] = [*api.routes(), *control.routes()]
        self._route_paths: dict[str, str] = {}  # request path -> route path, for the log
        self._inner = Starlette(
            routes=self._routes,
            exception_handlers={
                ApiError: _api_error,
                HTTPException: _http_error,
            },
        )
        self._inner.state.simulator = simulator

    @property
    def clock(self) -> Clock:
        return self.simulator.clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self._inner(scope, receive, send)
            return
        await self._serve_api(scope, receive, send)

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        observations = self.simulator.observations
        observations.enter()
        entry: dict[str, Any] = {"time": format_time(self.simulator.clock.now())}
        try:
            body = await _read_body(receive)
            entry.update(self._describe(scope, body))
            decision = self.simulator.faults.decide(scope["path"])
            entry["fault"] = decision.label
            if decision.delay_ms > 0:
                await self._sleep(decision.delay_ms / 1000)
            if decision.status is not None:
                entry["status"] = decision.status
                await _send_fault(send, decision)
                return
            await self._handle(scope, body, receive, send, decision, entry)
        finally:
            observations.leave()
            observations.record(entry)

    async def _handle(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        decision: FaultDecision,
        entry: dict[str, Any],
    ) -> None:
        # The answer is held back only when it is to be dropped; else it goes straight
        # through, and only its status is noted.
        response = _CapturedResponse(None if decision.drop else send)
        try:
            await self._inner(scope, _replay(body), response.send)
        except Exception:
            await response.forward(send)  # ServerErrorMiddleware's 500, if any
            raise
        entry["status"] = response.status
        entry["runCounter"] = scope.get(api.RUN_CREATED_KEY)
        if decision.drop:
            entry["dropped"] = True
            await _drop_connection(receive, send)

    def _describe(self, scope: Scope, body: bytes) -> dict[str, Any]:
        method = scope["method"]
        authorization = False
        content_type = None
        for key, value in scope["headers"]:
            name = key.lower()
            if name == b"authorization":
                authorization = True
            elif name == b"content-type":
                content_type = value.decode("latin-1")  # the last one, if repeated
        shown_headers = {}
        if authorization:
            shown_headers["authorization"] = REDACTED
        if content_type is not None:
            shown_headers["content-type"] = content_type
        query_string = scope.get("query_string", b"")
        query = (
            dict(httpx.QueryParams(query_string.decode("latin-1")).multi_items())
            if query_string
            else {}
        )
        entry: dict[str, Any] = {
            "method": method,
            "path": scope["path"],
            "endpoint": f"{method} {self._route_path(scope)}",
            "query": query,
            "headers": shown_headers,
            "status": None,
            "fault": None,
            "dropped": False,
            "runCounter": None,
            "body": None,
        }
        if body.strip():
            parsed, as_handlers_read_it = _parse_json(body)
            if parsed is None:
                entry["bodyError"] = f"not valid JSON ({len(body)} bytes, not shown)"
            else:
                entry["body"] = parsed.redacted
                if as_handlers_read_it:
                    scope[api.PARSED_BODY_KEY] = parsed
        return entry

    def _route_path(self, scope: Scope) -> str:
        """The path of the route ``scope`` goes to (its path if none), remembered by path:
        whether a route matches depends only on the path (a wrong method matches
        partially)."""
        path: str = scope["path"]
        known = self._route_paths.get(path)
        if known is not None:
            return known
        found = path
        for route in self._routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                found = str(getattr(route, "path", path))
                break
        if len(self._route_paths) >= _ROUTE_PATHS_KEPT:
            self._route_paths.clear()  # ids in paths make them unbounded
        self._route_paths[path] = found
        return found


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.error, error.detail)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return error_response(404, "404: Not Found", f"No endpoint {request.url.path}.")
    if error.status_code == 405:
        return error_response(
            405,
            "405: Method Not Allowed",
            f"{request.method} is not allowed on {request.url.path}.",
        )
    return error_response(error.status_code, f"{error.status_code}: {error.detail}")


def error_response(
    status: int, error: str, detail: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Coalesce's error body: ``{"error": {"errorString", "errorDetail"?}}``."""
    content: dict[str, Any] = {"errorString": error}
    if detail is not None:
        content["errorDetail"] = detail
    return JSONResponse({"error": content}, status_code=status, headers=headers)


async def _send_fault(send: Send, decision: FaultDecision) -> None:
    assert decision.status is not None
    headers = {}
    detail = "Injected by the simulator."
    if decision.retry_after is not None:
        headers["Retry-After"] = str(decision.retry_after)
        detail = f"Injected by the simulator; retry after {decision.retry_after} seconds."
    response = error_response(
        decision.status, _FAULT_TEXT.get(decision.status, str(decision.status)), detail, headers
    )
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _parse_json(body: bytes) -> tuple[ParsedBody | None, bool]:
    """The body parsed as JSON (None if it is not JSON), and whether it was parsed as
    the handlers parse bodies.

    UTF-8 text is tried first, as the handlers read bodies; a body that parses so parses
    to the same value as :func:`json.loads` of the bytes. Other bodies (with a BOM, in
    UTF-16) are logged as ``json.loads`` reads them, and the handlers reject them.
    """
    try:
        return ParsedBody(json.loads(body.decode("utf-8"))), True
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    try:
        return ParsedBody(json.loads(body)), False
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, False


class _CapturedResponse:
    """Notes a response's status, and sends it on to ``through`` or, without one, holds
    it back, so that it can be forwarded or never sent."""

    def __init__(self, through: Send | None) -> None:
        self._through = through
        self.messages: list[Message] = []
        self.status: int | None = None

    async def send(self, message: Message) -> None:
        if self.status is None and message["type"] == "http.response.start":
            self.status = int(message["status"])
        if self._through is not None:
            await self._through(message)
        else:
            self.messages.append(message)

    async def forward(self, send: Send) -> None:
        for message in self.messages:
            await send(message)
        self.messages.clear()


async def _drop_connection(receive: Receive, send: Send) -> None:
    """Close the client's connection without an answer.

    Under uvicorn (h11 or httptools), ``send`` is a method of the request cycle, which
    holds the socket's transport: aborting it resets the connection. In-process there is
    no connection, so the error the client would see is raised instead.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports do not derive from asyncio.Transport.
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        raise SimulatedDisconnect("Server disconnected without sending a response.")
    abort()
    # Wait until the server noticed, so it does not answer in our place.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receive(), timeout=1.0)


def create_app(
    world: World | str | Path | None = None,
    *,
    clock: Clock | None = None,
    seed: int | None = None,
    sleep: Sleep = asyncio.sleep,
) -> SimApp:
    """A simulator of ``world`` (a :class:`World`, a YAML file, or the demo world).

    ``clock`` defaults to a :class:`SimClock` at speed 1; ``seed`` overrides the world's
    seed (node failures and faults); ``sleep`` is how injected latency waits.
    """
    if world is None:
        world = demo_world()
    elif not isinstance(world, World):
        world = load_world(world)
    return SimApp(Simulator(world, clock=clock or SimClock(), seed=seed), sleep=sleep)
