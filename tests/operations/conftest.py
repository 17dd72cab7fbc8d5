"""Fixtures for status, cancel, rerun and unlock: the embedded simulator (``sim://``) on
a small world, a spec for it, and helpers to drive the commands and read the results.

The world's runs take no time or for ever, so no test waits on the clock:

- ``{ location: QUICK }`` completes the moment it is created;
- ``{ location: BROKEN }`` fails the moment it is created (node BROKEN, every time);
- ``{ location: SLOW }`` runs for days: it stays in flight until canceled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.sim import SimApp, embedded_app
from runner.state import RunRecord, SqlState, open_state
from tests.conftest import CliResult

#: The ``run_cli`` fixture: ``runner ARGS`` in this process.
RunCli = Callable[..., CliResult]

TOKEN = "sim-demo-token"
ENVIRONMENT_ID = "5"
BROKEN_ERROR = "SQL compilation error: invalid identifier 'R.RETURN_REASON_CODE'"

WORLD: dict[str, Any] = {
    "version": 1,
    "seed": 0,
    "tokens": [TOKEN],
    "projects": [
        {
            "id": "1",
            "name": "Operations",
            "nodes": [
                {"name": "QUICK_A", "location": "QUICK"},
                {"name": "QUICK_B", "location": "QUICK", "dependsOn": ["QUICK_A"]},
                {"name": "BROKEN", "location": "BROKEN"},
                {"name": "SLOW_A", "location": "SLOW"},
                {"name": "SLOW_B", "location": "SLOW"},
            ],
        }
    ],
    "environments": [
        {
            "id": ENVIRONMENT_ID,
            "name": "ops",
            "project": "1",
            "parameters": {"region": "from-the-environment"},
        },
    ],
    "behavior": {
        "startDelay": 0,
        "nodeSeconds": 0,
        "durations": [{"location": "SLOW", "seconds": 1_000_000}],
        "failures": [{"name": "BROKEN", "error": BROKEN_ERROR}],
    },
}

# One spec, environment "ops": the runs tests pick from with --run.
SPEC = """\
version: 1
environmentID: "5"
name: ops
coalesce:
  url: "sim://"
userCredentials:
  snowflakeAuthType: Basic
  snowflakeUsername: SVC_OPS
  snowflakePassword: "{{ secret('SNOWFLAKE_PASSWORD') }}"
defaults:
  parameters:
    region: "{{ var('region', default='emea') }}"
batches:
  - name: first
    onFailure: continue
    runs:
      - name: good
        includeNodesSelector: "{ location: QUICK }"
      - name: bad
        includeNodesSelector: "{ location: BROKEN }"
        forceIgnoreEnvironmentStatus: true
        parameters:
          load_date: "2026-01-05"
      - name: slow-a
        includeNodesSelector: "{ location: SLOW name: SLOW_A }"
      - name: slow-b
        includeNodesSelector: "{ location: SLOW name: SLOW_B }"
"""


class Sim:
    """The process-wide embedded simulator, through its ``/_sim/`` endpoints."""

    def __init__(self, app: SimApp) -> None:
        self.app = app

    def call(self, method: str, path: str, body: Any = None) -> Any:
        async def send() -> Any:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                response = await client.request(method, path, json=body)
                response.raise_for_status()
                return response.json()

        return asyncio.run(send())

    def reset(self, world: dict[str, Any]) -> None:
        self.call("POST", "/_sim/reset", {"world": world})

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The request log (as the simulator shows it: credentials redacted)."""
        log: list[dict[str, Any]] = self.call("GET", "/_sim/requests")["data"]
        return [entry for entry in log if endpoint is None or entry["endpoint"] == endpoint]

    def runs(self) -> dict[int, dict[str, Any]]:
        return {run["runCounter"]: run for run in self.call("GET", "/_sim/runs")["data"]}

    def log_text(self) -> str:
        return json.dumps(self.call("GET", "/_sim/requests")) + json.dumps(
            self.call("GET", "/_sim/runs")
        )


@pytest.fixture
def sim() -> Iterator[Sim]:
    """The embedded simulator on this module's world, with no runs; put back as it was
    afterwards, for the tests that use the demo world."""
    app = embedded_app()
    before = app.simulator.world
    simulator = Sim(app)
    simulator.reset(WORLD)
    yield simulator
    simulator.reset(before.model_dump(mode="json"))


@dataclass
class Workspace:
    """A folder with the spec and a state file, and shortcuts to both."""

    root: Path
    spec: Path
    state: Path

    def read_state(self) -> SqlState:
        return open_state(self.state, readonly=True)

    def latest(self, identity: str) -> RunRecord:
        with self.read_state() as store:
            record = store.find_run(identity)
        assert record is not None, f"no {identity} in the journal"
        return record

    def counter(self, identity: str) -> int:
        """The runCounter of the latest run of ``identity``."""
        counter = self.latest(identity).run_counter
        assert counter is not None, f"{identity} has no runCounter"
        return counter

    def state_bytes(self) -> bytes:
        """The state database and its journal files, as they are on disk."""
        return b"".join(p.read_bytes() for p in sorted(self.state.parent.glob("state.db*")))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sim: Sim) -> Workspace:
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "not-a-canary")
    spec = tmp_path / "specs" / "ops.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC)
    state = tmp_path / ".runner" / "state.db"
    return Workspace(tmp_path, spec, state)


def apply_args(*runs: str, wait: bool = True) -> list[str]:
    """``runner apply`` of some runs of the spec, fast and without questions."""
    args = ["apply", "specs", "--auto-approve", "--poll-interval", "0.05"]
    for run in runs:
        args += ["--run", run]
    if not wait:
        args.append("--no-wait")
    return args
