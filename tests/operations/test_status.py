"""``runner status``: nothing recorded, after an apply, runs in flight, locks, --refresh."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta

from runner.state import open_state
from tests.conftest import CliResult
from tests.operations.conftest import RunCli, Sim, Workspace, apply_args


def test_status_with_no_state_says_nothing_was_applied_and_creates_nothing(
    run_cli: RunCli, workspace: Workspace
) -> None:
    result: CliResult = run_cli("status")
    assert result.code == 0
    assert "No applies recorded yet" in result.out
    assert not workspace.state.exists()


def test_status_after_an_apply_shows_who_applied_what_and_how_it_ended(
    run_cli: RunCli, workspace: Workspace
) -> None:
    applied = run_cli(*apply_args("good", "bad"))
    assert applied.code == 3  # bad failed

    result = run_cli("status")
    assert result.code == 0
    assert "Last apply: 1 (failed)" in result.out
    assert "runs: 1 completed, 1 failed" in result.out
    assert "environments: ops" in result.out
    assert "No runs in flight." in result.out
    assert "No locks held." in result.out

    document = json.loads(run_cli("status", "--format", "json").out)
    assert document["formatVersion"] == 1
    assert document["lastApply"]["applyID"] == 1
    assert document["lastApply"]["outcome"] == "failed"
    assert document["lastApply"]["runs"] == {"completed": 1, "failed": 1}
    assert document["inFlight"] == []


def test_status_lists_runs_in_flight_and_who_holds_which_lock(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    counter = workspace.counter("ops/slow-a")
    with open_state(workspace.state) as store:
        store.acquire_lock(
            "ops", holder="alice", host=socket.gethostname(), pid=os.getpid(), ttl_seconds=600
        )
        store.acquire_lock(
            "nightly",
            holder="bob",
            host="build-9",
            pid=4242,
            ttl_seconds=60,
            now=datetime.now(UTC) - timedelta(hours=2),
        )

    result = run_cli("status")

    assert result.code == 0
    assert "In flight (1):" in result.out
    flight = next(line for line in result.out.splitlines() if "ops/slow-a" in line)
    assert "waitingToRun" in flight and f"run {counter}" in flight
    assert "Locks (2):" in result.out
    assert f"alice on {socket.gethostname()} (pid {os.getpid()})" in result.out
    assert "live: its apply may still be running" in result.out
    assert "bob on build-9 (pid 4242)" in result.out
    assert "STALE: no heartbeat" in result.out
    assert "runner unlock nightly" in result.out
    locks = {
        lock["environment"]: lock
        for lock in json.loads(run_cli("status", "--format", "json").out)["locks"]
    }
    assert locks["ops"]["stale"] is False and locks["nightly"]["stale"] is True
    assert sim.runs()[counter]["status"] == "running"


def test_status_env_shows_only_that_environment(run_cli: RunCli, workspace: Workspace) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    result = run_cli("status", "--env", "elsewhere")
    assert result.code == 0
    assert "No applies recorded yet" in result.out


def test_refresh_records_how_runs_in_flight_ended_with_their_failed_nodes(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    # --no-wait leaves both recorded as waitingToRun; in Coalesce both ended at once.
    assert run_cli(*apply_args("good", "bad", wait=False)).code == 0
    assert workspace.latest("ops/bad").status.value == "waitingToRun"
    asked_before = len(sim.requests("GET /scheduler/runStatus"))

    result = run_cli("status", "--refresh")

    assert result.code == 0
    assert "waitingToRun -> completed" in result.out
    assert "waitingToRun -> failed (1 failed node)" in result.out
    assert "failed node BROKEN" in result.out
    assert "No runs in flight." in result.out
    bad = workspace.latest("ops/bad")
    assert bad.status.value == "failed"
    assert [node["name"] for node in bad.failed_nodes] == ["BROKEN"]
    assert workspace.latest("ops/good").status.value == "completed"
    assert bad.run_link == f"http://sim/runs/{bad.run_counter}"
    # One status read per run: the link came with the answer that said the run ended.
    assert len(sim.requests("GET /scheduler/runStatus")) - asked_before == 2


def test_refresh_keeps_a_run_still_going_in_flight(run_cli: RunCli, workspace: Workspace) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    result = run_cli("status", "--refresh", "--format", "json")
    document = json.loads(result.out)
    assert result.code == 0
    assert [r["after"] for r in document["refreshed"]["runs"]] == ["running"]
    assert [r["status"] for r in document["inFlight"]] == ["running"]
    record = workspace.latest("ops/slow-a")
    assert record.status.value == "running"
    assert record.run_link == f"http://sim/runs/{record.run_counter}"  # shown from now on
