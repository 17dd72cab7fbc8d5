"""A scripted fake Coalesce for httpx.MockTransport, and a clock that never sleeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from runner.coalesce import ClientPool, Clock, CoalesceClient, RetryPolicy
from runner.secrets import Secret

TOKEN_VALUE = "CANARY-TOKEN-3c9e1d"


def token() -> Secret:
    """A fresh token: the suite forgets registered secrets after each test."""
    return Secret(TOKEN_VALUE)


URL = "https://app.coalescesoftware.io"

Step = Callable[[httpx.Request, "FakeCoalesce"], httpx.Response]


@dataclass
class FakeClock:
    """Time moves only when the client sleeps."""

    now: float = 0.0
    epoch: float = 1_800_000_000.0
    draw: float = 0.5
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    def random(self) -> float:
        return self.draw

    def clock(self) -> Clock:
        return Clock(sleep=self.sleep, random=self.random, monotonic=self.monotonic, wall=self.wall)


@dataclass
class FakeCoalesce:
    """Answers each request with the next scripted step.

    ``reached`` holds every request that reached the server (a refused connection does
    not); ``created`` counts the runs the server created.
    """

    steps: list[Step]
    attempted: list[httpx.Request] = field(default_factory=list)
    reached: list[httpx.Request] = field(default_factory=list)
    created: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.attempted.append(request)
        if not self.steps:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return self.steps.pop(0)(request, self)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


# ------------------------------------------------------------------ steps


def refuse(exc_type: type[httpx.TransportError] = httpx.ConnectError) -> Step:
    """The request never reaches the server."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        raise exc_type("connection refused", request=request)

    return step


def answer(
    status: int = 200,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    text: str | None = None,
) -> Step:
    """The server receives the request and answers without creating anything."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return step


def create(run_counter: int) -> Step:
    """The server creates a run and answers with its id."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        server.created += 1
        return httpx.Response(200, json={"runCounter": run_counter})

    return step


def create_then_fail(exc_type: type[httpx.TransportError], status: int | None = None) -> Step:
    """The server creates a run, then the answer is lost (or replaced by ``status``)."""

    def step(request: httpx.Request, server: FakeCoalesce) -> httpx.Response:
        server.reached.append(request)
        server.created += 1
        if status is not None:
            return httpx.Response(status, text="upstream error")
        raise exc_type("lost", request=request)

    return step


def error(status: int, error_string: str, detail: str | None = None) -> Step:
    body: dict[str, Any] = {"errorString": error_string}
    if detail is not None:
        body["errorDetail"] = detail
    return answer(status, {"error": body})


# ------------------------------------------------------------------ clients


def make_client(
    server: FakeCoalesce,
    clock: FakeClock | None = None,
    *,
    url: str = URL,
    read_retry: RetryPolicy | None = None,
    write_retry: RetryPolicy | None = None,
    token_source: str = "the environment variable COALESCE_TOKEN",
) -> CoalesceClient:
    return CoalesceClient(
        url,
        token(),
        token_source=token_source,
        transport=server.transport(),
        clock=(clock or FakeClock()).clock(),
        read_retry=read_retry or RetryPolicy(),
        write_retry=write_retry or RetryPolicy(max_attempts=4, max_total=60.0),
        environ={},
    )


def make_pool(server: FakeCoalesce, clock: FakeClock | None = None) -> ClientPool:
    return ClientPool(
        transport=server.transport(), clock=(clock or FakeClock()).clock(), environ={}
    )


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content)
