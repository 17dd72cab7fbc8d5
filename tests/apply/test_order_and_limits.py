"""Batch order and the two concurrency limits, seen from the simulator's side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from runner.apply import ApplyOptions
from runner.sim import SimClock, create_app, parse_world
from runner.sim.app import Receive, Scope, Send
from runner.sim.clock import parse_time
from tests.apply._inprocess import apply_specs
from tests.apply._support import SimView, batch, run, tag_of, world, write_spec


def _overlap(intervals: list[tuple[float, float]]) -> int:
    """The most half-open intervals [start, end) that overlap."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def test_batches_run_in_order_and_max_concurrent_is_held_and_reached(
    run_cli, any_sim: SimView, specs: Path
) -> None:
    any_sim.reset(world(), speed=2)  # a run lasts about 150 ms of real time
    first = [run(f"first-{i}") for i in range(6)]
    second = [run(f"second-{i}") for i in range(2)]
    write_spec(
        specs,
        "alpha",
        "1",
        any_sim.url,
        [batch("first", first, maxConcurrent=3), batch("second", second)],
    )

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 0, result.text
    sim_runs = {tag_of(r): r for r in any_sim.runs()}
    assert sorted(sim_runs) == sorted(r["name"] for r in first + second)
    first_ended = max(parse_time(sim_runs[r["name"]]["endedAt"]) for r in first)
    second_fired = [
        parse_time(request["time"])
        for request in any_sim.start_runs()
        if request["body"]["parameters"]["tag"].startswith("second-")
    ]
    assert len(second_fired) == 2
    assert min(second_fired) >= first_ended, "batch 'second' was fired before 'first' ended"

    # maxConcurrent: 3 of the first batch's runs at most were active on the server at
    # once, and 3 were (the second batch has only 2 runs, so the peak is the first's).
    assert any_sim.counters()["environments"]["1"]["maxActive"] == 3
    intervals = [
        (parse_time(sim_runs[r["name"]]["createdAt"]), parse_time(sim_runs[r["name"]]["endedAt"]))
        for r in first
    ]
    assert _overlap(intervals) == 3


def test_max_concurrent_start_calls_in_flight_is_held_and_reached(
    run_cli, any_sim: SimView, specs: Path
) -> None:
    latency = {"probability": 1.0, "ms": 150, "paths": ["/scheduler/startRun"]}
    any_sim.reset(world(faults={"latency": latency}))
    write_spec(specs, "alpha", "1", any_sim.url, [batch("only", [run(f"r{i}") for i in range(8)])])

    # --no-wait on a single batch: nothing but startRun calls are in flight while firing.
    result = run_cli("apply", "--auto-approve", "--no-wait", "--max-concurrent", "3")

    assert result.code == 0, result.text
    counters = any_sim.counters()
    assert counters["endpoints"]["POST /scheduler/startRun"] == 8
    assert counters["maxInFlight"] == 3


class StartRunGauge:
    """Wraps an ASGI app and counts the startRun calls it is handling at once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.now = 0
        self.peak = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = scope.get("path") == "/scheduler/startRun"
        if counted:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                self.now -= 1


def test_max_concurrent_holds_over_all_environments(specs: Path, tmp_path: Path) -> None:
    latency = {"probability": 1.0, "ms": 30, "paths": ["/scheduler/startRun"]}
    app = create_app(parse_world(world(faults={"latency": latency})), clock=SimClock(10))
    gauge = StartRunGauge(app)
    for env_id, name in (("1", "alpha"), ("2", "beta"), ("3", "gamma")):
        write_spec(
            specs, name, env_id, "sim://", [batch("b", [run(f"{name}-{i}") for i in range(4)])]
        )

    applied = apply_specs(
        specs,
        httpx.ASGITransport(app=gauge),
        state=tmp_path / "state.db",
        options=ApplyOptions(max_concurrent=2, poll_interval=0.02),
    )

    assert applied.result.exit_code == 0
    assert len(app.simulator.all_runs()) == 12
    assert gauge.peak == 2
