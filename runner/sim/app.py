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
from runner.sim.observe import REDACTED, redact
from runner.sim.validation import ApiError
from runner.sim.world import World, load_world

__all__ = ["SimApp", "SimulatedDisconnect", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

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
        response = _CapturedResponse()
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
            return
        await response.forward(send)

    def _describe(self, scope: Scope, body: bytes) -> dict[str, Any]:
        method = scope["method"]
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        shown_headers = {}
        if "authorization" in headers:
            shown_headers["authorization"] = REDACTED
        if "content-type" in headers:
            shown_headers["content-type"] = headers["content-type"]
        query = httpx.QueryParams(scope.get("query_string", b"").decode("latin-1"))
        entry: dict[str, Any] = {
            "method": method,
            "path": scope["path"],
            "endpoint": f"{method} {self._route_path(scope)}",
            "query": dict(query.multi_items()),
            "headers": shown_headers,
            "status": None,
            "fault": None,
            "dropped": False,
            "runCounter": None,
            "body": None,
        }
        if body.strip():
            try:
                entry["body"] = redact(json.loads(body))
            except (UnicodeDecodeError, json.JSONDecodeError):
                entry["bodyError"] = f"not valid JSON ({len(body)} bytes, not shown)"
        return entry

    def _route_path(self, scope: Scope) -> str:
        for route in self._routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])


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


class _CapturedResponse:
    """Holds a response back, so it can be forwarded or never sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    @property
    def status(self) -> int | None:
        for message in self.messages:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return None

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    async def forward(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


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
