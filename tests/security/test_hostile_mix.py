"""A seeded mix of hostile answers over a real socket: a few hundred runs, each startRun
carried out by the simulator and then answered well, spoiled (503, 503 with
Retry-After, 502, an invalid runCounter), trickled byte by byte (within and past the
client's deadline), cut off half-way, answered with an error echoing the request (token
included) in an encoding drawn at random, or held past the client's deadline and created
afterwards, behind a run list that lags a few seconds behind creation.

Whatever the draw: every planned run is created at most once, every run ends completed
or uncertain (and then apply exits 5), the token shows in no output or state in any
encoding, and once the list catches up `status --refresh`
and `apply --resume` settle every uncertain run without sending a single startRun more.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from runner.sim import SimApp, SimClock, create_app, parse_world
from runner.sim.app import Receive, Scope, Send
from tests.apply._support import asgi_answer, batch, run, wait_until, world, write_spec
from tests.conftest import CliResult
from tests.security.test_canary_matrix import ECHO_ENCODINGS, TOKEN, encoded_leaks_in

ENVIRONMENTS = (("1", "alpha"), ("2", "beta"), ("3", "gamma"))
RUNS_PER_ENVIRONMENT = 70
LAG = 2.0  # seconds a new run stays out of the run list
HOLD = 1.5  # a held startRun is created this long after it arrived
FAULTS = {  # answer -> weight
    "ok": 55,
    "503": 8,
    "503 Retry-After": 6,
    "502": 6,
    "runCounter 10**29": 3,
    "runCounter -1": 3,
    "runCounter true": 3,
    "runCounter 1.5": 3,
    'runCounter "7"': 3,
    "hold": 10,
    "trickle past the deadline": 4,
    "trickle within the deadline": 4,
    "drop": 4,
    "echo 500": 4,  # created, then an error echoing the request: the run is uncertain
    "echo 400": 4,  # refused, echoing the request: the run is not started, the error shown
}
TRICKLE_PAUSE = {"trickle past the deadline": 0.2, "trickle within the deadline": 0.01}
SPOILED: dict[str, tuple[int, Any, list[tuple[bytes, bytes]]]] = {
    "503": (503, {"error": {"errorString": "unavailable"}}, []),
    "503 Retry-After": (503, {"error": {"errorString": "unavailable"}}, [(b"retry-after", b"1")]),
    "502": (502, "<html>bad gateway</html>", []),
    "runCounter 10**29": (200, {"runCounter": 10**29}, []),
    "runCounter -1": (200, {"runCounter": -1}, []),
    "runCounter true": (200, {"runCounter": True}, []),
    "runCounter 1.5": (200, {"runCounter": 1.5}, []),
    'runCounter "7"': (200, {"runCounter": "7"}, []),
}


class SeededHostile:
    """The simulator behind a hostile front; ``lag`` may be set to 0 to catch up."""

    def __init__(self, app: SimApp, seed: int) -> None:
        self.app = app
        self.random = random.Random(seed)
        self.lag = LAG
        self.hostile = True  # False: every startRun is answered well
        self.start_runs = 0
        self.tags: list[str] = []  # the tag of each startRun received, in order
        self.drawn: Counter[str] = Counter()
        self._born: dict[int, float] = {}  # runCounter -> when it was created
        self._held: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/scheduler/startRun":
            await self._start_run(scope, receive, send)
        elif path.startswith("/api/v1/runs") and self.lag > 0:
            await self._lagging(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _start_run(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.start_runs += 1
        answer = "ok"
        if self.hostile:
            answer = self.random.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
        self.drawn[answer] += 1
        body = await _request_body(receive)
        self.tags.append(json.loads(body)["parameters"]["tag"])
        if answer == "hold":
            task = asyncio.get_running_loop().create_task(self._create_later(scope, body))
            self._held.add(task)
            while (await receive())["type"] != "http.disconnect":
                pass  # never answered: the client gives up and goes away
            return
        if answer == "echo 400":
            await _send_json(send, 400, {"error": {"errorString": self._echo(scope, body)}})
            return
        raw = await self._create(scope, body)
        if answer in TRICKLE_PAUSE:
            await _trickle(send, raw, TRICKLE_PAUSE[answer])
            return
        if answer == "drop":
            await _drop(send, raw)
            return
        if answer == "echo 500":
            await _send_json(send, 500, {"error": {"errorString": self._echo(scope, body)}})
            return
        status, spoiled, headers = SPOILED.get(answer, (200, None, []))
        out = raw if answer == "ok" else json.dumps(spoiled).encode()
        headers = [(b"content-type", b"application/json"), *headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    def _echo(self, scope: Scope, body: bytes) -> str:
        """The request, headers and body, in an encoding drawn from those a careless
        server or gateway was seen to use."""
        encoding = self.random.choice(sorted(ECHO_ENCODINGS))
        self.drawn[f"echo {encoding}"] += 1
        headers = "; ".join(f"{k.decode()}: {v.decode()}" for k, v in scope["headers"])
        return ECHO_ENCODINGS[encoding](f"{headers} {body.decode()}")

    async def _create_later(self, scope: Scope, body: bytes) -> None:
        await asyncio.sleep(HOLD)
        await self._create(scope, body)

    async def _create(self, scope: Scope, body: bytes) -> bytes:
        async def replay() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        raw = await asgi_answer(self.app, scope, replay)
        self._born[json.loads(raw)["runCounter"]] = time.monotonic()
        return raw

    def _young(self, run_id: int) -> bool:
        born = self._born.get(run_id)
        return born is not None and time.monotonic() - born < self.lag

    async def _lagging(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        tail = path.removeprefix("/api/v1/runs/").split("/")[0]
        if path != "/api/v1/runs" and tail.isdigit() and self._young(int(tail)):
            await _send_json(send, 404, {"error": {"errorString": "404: Run not found"}})
            return
        raw = await asgi_answer(self.app, scope, receive)
        if path != "/api/v1/runs":
            await _send_json(send, 200, json.loads(raw))
            return
        page = json.loads(raw)
        page["data"] = [r for r in page["data"] if not self._young(int(r["id"]))]
        await _send_json(send, 200, page)


async def _trickle(send: Send, raw: bytes, pause: float) -> None:
    """A whole, valid answer, one byte at a time."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        for i in range(len(raw)):
            await asyncio.sleep(pause)  # the fault itself: a slow link, not a wait in the test
            more = i < len(raw) - 1
            await send({"type": "http.response.body", "body": raw[i : i + 1], "more_body": more})
    except OSError:
        pass  # the client gave up on it


async def _drop(send: Send, raw: bytes) -> None:
    """Half an answer, then the connection closes."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": raw[: len(raw) // 2], "more_body": True})


async def _request_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def _send_json(send: Send, status: int, body: Any) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def _serve(front: SeededHostile) -> Iterator[str]:
    config = uvicorn.Config(
        front, host="127.0.0.1", port=0, log_level="warning", lifespan="off", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="the hostile server to listen")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("seed", [11, 29])
def test_a_seeded_hostile_mix_never_makes_two_runs_and_everything_settles(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    specs = tmp_path / "specs"  # the folder plan and apply read by default
    specs.mkdir()
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    app = create_app(parse_world(world(tokens=[TOKEN])), clock=SimClock(50))
    front = SeededHostile(app, seed)
    served = _serve(front)
    url = next(served)
    try:
        planned: dict[str, str] = {}
        for env_id, name in ENVIRONMENTS:
            runs = [run(f"{name}-{i:03d}") for i in range(RUNS_PER_ENVIRONMENT)]
            planned.update({r["name"]: f"{name}/{r['name']}" for r in runs})
            write_spec(specs, name, env_id, url, [batch("all", runs)])
        monkeypatch.setenv("RUNNER_REQUEST_DEADLINE", "1")
        fast = ("--format", "json", "--poll-interval", "0.05")

        # A window shorter than the lag: some runs must end uncertain.
        first: CliResult = run_cli(
            "apply", "--auto-approve", "--max-concurrent", "20", "--lookup-window", "1", *fast
        )

        document = json.loads(first.out)
        statuses = Counter(r["status"] for r in document["runs"])
        assert set(statuses) == {"completed", "uncertain", "not-started"}, statuses
        assert statuses["not-started"] == front.drawn["echo 400"]  # refused: none made
        assert first.code == 5, first.err[-2000:]
        _assert_at_most_once(app, planned)
        for fault in FAULTS:
            assert front.drawn[fault], f"the mix never drew {fault!r}"
        sent = front.start_runs
        assert sent == len(planned), "a startRun was sent twice"

        front.lag, front.hostile = 0, False  # the run list catches up; answers are good
        refreshed = run_cli("status", "--refresh", "--format", "json")
        assert json.loads(refreshed.out)["uncertain"] == [], "status --refresh left some"
        resumed = run_cli("apply", "--resume", "--lookup-window", "3", *fast)
        assert resumed.code == 0, resumed.err[-2000:]
        # Only the refused runs were fired again: settling an uncertain one sends nothing.
        refused = {r["name"] for r in document["runs"] if r["status"] == "not-started"}
        assert sorted(front.tags[sent:]) == sorted(name.split("/")[-1] for name in refused)
        created = _assert_at_most_once(app, planned)
        assert sorted(created) == sorted(planned), "a planned run was never created"
        final = json.loads(resumed.out)
        assert {r["status"] for r in final["runs"]} == {"completed"}

        state = b"".join(p.read_bytes() for p in (tmp_path / ".runner").glob("state.db*"))
        for shown in (first, refreshed, resumed):
            assert not encoded_leaks_in(shown.text), "a server's echo showed the token"
        assert not encoded_leaks_in(state.decode("utf-8", "replace"))
    finally:
        next(served, None)


def _assert_at_most_once(app: SimApp, planned: dict[str, str]) -> Counter[str]:
    created = Counter(str(r.body["parameters"]["tag"]) for r in app.simulator.all_runs())
    twice = [tag for tag, n in created.items() if n > 1]
    assert not twice, f"created twice: {twice}"
    assert set(created) <= set(planned)
    return created
