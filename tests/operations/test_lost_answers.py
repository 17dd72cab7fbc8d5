"""Writes whose answer was lost: a rerun is looked for before anything is sent again,
and a cancel is confirmed by asking how the run stands."""

from __future__ import annotations

import os
import socket

from runner.state import open_state
from tests.operations.conftest import RunCli, Sim, Workspace, apply_args


def drop_answers_to(sim: Sim, path: str) -> None:
    """The simulator carries out ``path`` requests, then drops the connection unanswered."""
    sim.call("POST", "/_sim/faults", {"dropAfterCreate": {"probability": 1.0, "paths": [path]}})


def test_a_rerun_whose_answer_was_lost_is_found_and_not_fired_twice(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    failed = workspace.counter("ops/bad")
    drop_answers_to(sim, "/scheduler/rerun")

    result = run_cli("rerun", "--failed", "--auto-approve", "--poll-interval", "0.05")

    sent = sim.requests("POST /scheduler/rerun")
    assert len(sent) == 1 and sent[0]["dropped"] is True
    reruns = [run for run in sim.runs().values() if run["reRunID"] == failed]
    assert len(reruns) == 1
    assert result.code == 3, result.text
    assert f"found it as run {reruns[0]['runCounter']}" in result.err
    record = workspace.latest("ops/bad")
    assert record.run_counter == reruns[0]["runCounter"]
    assert record.status.value == "failed"


def test_a_cancel_whose_answer_was_lost_is_confirmed_from_the_run_status(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    counter = workspace.counter("ops/slow-a")
    drop_answers_to(sim, "/scheduler/cancelRun")

    result = run_cli("cancel", "ops/slow-a")

    assert result.code == 0, result.text
    assert "Canceled 1 run." in result.out
    assert len(sim.requests("POST /scheduler/cancelRun")) == 1
    assert sim.runs()[counter]["status"] == "canceled"
    assert workspace.latest("ops/slow-a").status.value == "canceled"


def test_rerun_fires_nothing_while_an_apply_holds_the_lock(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    with open_state(workspace.state) as store:
        store.acquire_lock(
            "ops", holder="alice", host=socket.gethostname(), pid=os.getpid(), ttl_seconds=600
        )

    result = run_cli("rerun", "--failed", "--auto-approve", "--poll-interval", "0.05")

    assert result.code == 1
    assert "locked by another apply: alice" in result.err
    assert sim.requests("POST /scheduler/rerun") == []
    with workspace.read_state() as store:
        last = store.last_apply()
        assert last is not None and last.apply_id == 1  # no apply was recorded
        assert [lock.holder for lock in store.list_locks()] == ["alice"]
