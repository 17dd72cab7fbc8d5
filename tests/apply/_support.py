"""What the apply tests share: a small fast world, spec files, a served simulator, and
`runner apply` as a real process.

Nothing here sleeps to synchronise: a process is followed line by line (with a watchdog
that kills it if it goes quiet for too long), and the simulator is polled in bounded
loops until what a test waits for is true.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import runner
from runner.state import LockToken, StateStore

PROJECT = Path(runner.__file__).resolve().parent.parent
TOKEN = "tok-apply-tests"
STARTUP_LIMIT = 30.0  # seconds a process may take to say its first line
LINE_LIMIT = 30.0  # seconds a followed process may stay silent

#: Environments 1-3 are healthy, 4 is in Failed Deploy. The node BAD always fails.
#:   S1 -> T1 -> F1 -> M1
#:      -> T2 /
#:   T1 -> BAD
FAST_WORLD: dict[str, Any] = {
    "version": 1,
    "seed": 11,
    "tokens": [TOKEN],
    "projects": [
        {
            "id": "1",
            "name": "Tiny",
            "nodes": [
                {"name": "S1", "location": "SRC", "nodeType": "Source"},
                {"name": "T1", "location": "STG", "dependsOn": ["S1"]},
                {"name": "T2", "location": "STG", "dependsOn": ["S1"]},
                {"name": "F1", "location": "FACT", "dependsOn": ["T1", "T2"]},
                {"name": "BAD", "location": "FACT", "dependsOn": ["T1"]},
                {"name": "M1", "location": "MART", "dependsOn": ["F1"]},
            ],
            "jobs": [{"id": "5", "name": "staging", "include": "{ location: STG }"}],
        }
    ],
    "environments": [
        {"id": "1", "name": "alpha", "project": "1"},
        {"id": "2", "name": "beta", "project": "1"},
        {"id": "3", "name": "gamma", "project": "1"},
        {"id": "4", "name": "broken", "project": "1", "status": "Failed Deploy"},
    ],
    "behavior": {
        "startDelay": 0.1,
        "nodeSeconds": 0.2,
        "failures": [{"name": "BAD", "error": "SQL compilation error: invalid identifier"}],
    },
}

#: A simulator speed at which time all but stands still: runs stay in flight until a
#: test speeds the clock up again.
FROZEN = 1e-6

STAGING = "{ location: STG }"  # two nodes, one after the other's source: a short run
FAILING = "{ name: BAD }"  # one node that always fails


def world(
    *,
    faults: Mapping[str, Any] | None = None,
    behavior: Mapping[str, Any] | None = None,
    tokens: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The fast world, with some of its parts replaced."""
    data = copy.deepcopy(FAST_WORLD)
    if faults is not None:
        data["faults"] = dict(faults)
    if behavior is not None:
        data["behavior"] = {**data["behavior"], **behavior}
    if tokens is not None:
        data["tokens"] = list(tokens)
    return data


def run(name: str, selector: str = STAGING, **keys: Any) -> dict[str, Any]:
    """A run whose parameter ``tag`` is its name, so the simulator's copy of each run
    can be told apart (and matched to its identity) by its parameters."""
    return {"name": name, "includeNodesSelector": selector, "parameters": {"tag": name}, **keys}


def batch(name: str, runs: list[dict[str, Any]], **keys: Any) -> dict[str, Any]:
    return {"name": name, "runs": runs, **keys}


def write_spec(
    folder: Path,
    name: str,
    environment_id: str,
    url: str,
    batches: list[dict[str, Any]],
    **keys: Any,
) -> Path:
    """Write ``folder/NAME.yaml`` and return its path."""
    spec = {
        "version": 1,
        "environmentID": environment_id,
        "name": name,
        "coalesce": {"url": url, "token": "{{ secret('COALESCE_TOKEN') }}"},
        **keys,
        "batches": batches,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


NO_TAG = "(no tag)"


def tag_of(sim_run: Mapping[str, Any]) -> str:
    """The ``tag`` parameter a simulator run was created with (:data:`NO_TAG` if none)."""
    parameters = (sim_run.get("request") or {}).get("parameters") or {}
    tag = parameters.get("tag")
    return str(tag) if tag is not None else NO_TAG


def wait_until(condition: Callable[[], Any], *, limit: float = 20.0, what: str) -> Any:
    """Ask ``condition`` again until it gives something true; fail after ``limit`` s."""
    deadline = time.monotonic() + limit
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit:g}s waiting for {what}")
        pause.wait(0.01)


# -- a served simulator ----------------------------------------------------------------


class InProcess:
    """Requests to an ASGI app in this process, for :class:`SimView` (sync, like
    ``httpx.Client``: each call runs its own event loop)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def close(self) -> None:
        """Nothing to close: each call opens and closes its own client."""

    def get(self, path: str) -> httpx.Response:
        return asyncio.run(self._request("GET", path, None))

    def post(
        self, path: str, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return asyncio.run(self._request("POST", path, json, headers))

    async def _request(
        self, method: str, path: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        async with httpx.AsyncClient(transport=self._transport, base_url="http://sim") as client:
            response = await client.request(method, path, json=body, headers=headers)
            await response.aread()
            return response


class SimView:
    """The simulator's own endpoints (``/_sim/``), through ``http``; ``url`` is what a
    spec names to reach the simulator."""

    def __init__(self, http: httpx.Client | InProcess, url: str) -> None:
        self.http = http
        self.url = url

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        response = self.http.post(path, json=dict(body))
        response.raise_for_status()
        return response.json()

    def reset(self, data: Mapping[str, Any], *, speed: float = 10.0) -> None:
        """Start over with ``data`` (runs, request log and counters forgotten)."""
        self.post("/_sim/reset", {"world": data})
        self.post("/_sim/clock", {"speed": speed})

    def runs(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("/_sim/runs")["data"]
        return data

    def requests(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("/_sim/requests")["data"]
        return data

    def counters(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/_sim/counters")
        return data

    def start_runs(self) -> list[dict[str, Any]]:
        """The startRun requests the simulator answered (or dropped), in order."""
        return [r for r in self.requests() if r["endpoint"] == "POST /scheduler/startRun"]


class SimServer(SimView):
    """``runner sim`` running as its own process, over a real socket."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        super().__init__(httpx.Client(base_url=url, timeout=10.0), url)
        self.process = process

    def stop(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def start_sim(*args: str) -> SimServer:
    """Start ``runner sim --port 0 ARGS`` and wait for the line that gives its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_child_environment({}),
        cwd=PROJECT,
    )
    watchdog = threading.Timer(STARTUP_LIMIT, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
    finally:
        watchdog.cancel()
    prefix = "runner sim listening on "
    if not first.startswith(prefix):
        process.kill()
        process.communicate()
        pytest.fail(f"runner sim did not start: {first!r}")
    # The banner is short and printed at once; the pipe is left to the process.
    return SimServer(process, first[len(prefix) :].strip())


# -- runner apply as a process ---------------------------------------------------------


def _child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNNER_", "COALESCE_", "SNOWFLAKE_", "GITHUB_"))
    }
    keep["PYTHONPATH"] = str(PROJECT)
    keep.pop("CI", None)
    return {**keep, **extra}


LOCK_HOLDER = "someone else"


def hold_lock_elsewhere(store: StateStore, environment: str, ttl_seconds: float) -> LockToken:
    """``environment``'s lock, held as another apply on this host would hold it."""
    return store.acquire_lock(
        environment,
        holder=LOCK_HOLDER,
        host=socket.gethostname(),
        pid=os.getpid(),
        ttl_seconds=ttl_seconds,
    )


class ApplyProcess:
    """``runner apply ARGS`` (or another ``command``, e.g. ``rerun``) in ``cwd``; its
    progress (stderr) is read line by line."""

    def __init__(
        self,
        args: Iterable[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        command: str = "apply",
    ) -> None:
        self.command = command
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner", command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_child_environment(env),
        )
        self.lines: list[str] = []
        self._out: list[str] = []
        assert self.process.stdout is not None
        # stdout is drained on the side, so a full pipe never blocks the process.
        self._reader = threading.Thread(
            target=lambda: self._out.append(self.process.stdout.read()),  # type: ignore[union-attr]
            daemon=True,
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_until(self, predicate: Callable[[list[str]], bool], *, what: str) -> list[str]:
        """Read progress lines until ``predicate(all lines so far)`` holds."""
        assert self.process.stderr is not None
        while not predicate(self.lines):
            watchdog = threading.Timer(LINE_LIMIT, self.process.kill)
            watchdog.start()
            try:
                line = self.process.stderr.readline()
            finally:
                watchdog.cancel()
            if not line:
                code = self.process.wait()
                pytest.fail(
                    f"runner {self.command} exited ({code}) before {what}:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line.rstrip("\n"))
        return self.lines

    def wait_for_the_lock(self) -> None:
        """Until the command says it waits for the lock :func:`hold_lock_elsewhere` took."""
        self.read_until(
            lambda lines: any(f"waiting for the lock held by {LOCK_HOLDER}" in x for x in lines),
            what=f"runner {self.command} waiting for the lock",
        )

    def signal(self, how: signal.Signals) -> None:
        self.process.send_signal(how)

    def finish(self, limit: float = 60.0) -> tuple[int, str, str]:
        """Wait for the process to end: exit code, stdout, and all of stderr."""
        assert self.process.stderr is not None
        watchdog = threading.Timer(limit, self.process.kill)
        watchdog.start()
        try:
            rest = self.process.stderr.read()
            code = self.process.wait()
        finally:
            watchdog.cancel()
        self._reader.join(timeout=10)
        self.lines.extend(rest.splitlines())
        return code, "".join(self._out), "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=10)
        for stream in (self.process.stderr, self.process.stdout):
            if stream is not None:
                stream.close()


def fired(lines: Iterable[str], identities: Iterable[str]) -> bool:
    """Whether the progress lines show every one of ``identities`` fired (a runCounter)."""
    text = list(lines)
    return all(any(f"{who} waitingToRun run " in line for line in text) for who in identities)


def as_json(text: str) -> Any:
    return json.loads(text)


async def asgi_answer(app: Any, scope: Any, receive: Any) -> bytes:
    """The body an ASGI ``app`` answers a request with, kept from the client (for test
    fronts that carry a request out, then answer it their own way)."""
    answers: list[Any] = []

    async def keep(message: Any) -> None:
        answers.append(message)

    await app(scope, receive, keep)
    return b"".join(m.get("body", b"") for m in answers if m["type"] == "http.response.body")
