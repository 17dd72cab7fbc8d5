"""Writes whose answer was lost: a rerun is looked for before anything is sent again,
and a cancel is confirmed by asking how the run stands."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import httpx

from runner.apply import ApplyOptions, RunState, Runtime
from runner.operations import (
    RerunResult,
    load_specs_for_operations,
    plan_reruns,
    rerun,
    select_for_rerun,
)
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


class LosesSightOfRuns:
    """Passes requests to the simulator until a rerun is sent; from then on every
    question about runs fails (500 with Retry-After: 0, so retries do not wait)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fired = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if self.fired and (path.startswith("/api/v1/runs") or path == "/scheduler/runStatus"):
            body = json.dumps({"error": {"errorString": "500: Internal Server Error"}}).encode()
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.fired = self.fired or path == "/scheduler/rerun"
        await self.app(scope, receive, send)


def rerun_blind(workspace: Workspace, sim: Sim) -> RerunResult:
    """``runner rerun --failed``, through the library, with runs hidden once it fires."""
    with open_state(workspace.state) as store:
        selection = select_for_rerun(store, (), failed=True)
        plan = plan_reruns(selection, load_specs_for_operations([workspace.spec]))
        runtime = Runtime(transport=httpx.ASGITransport(app=LosesSightOfRuns(sim.app)))
        options = ApplyOptions(poll_interval=0.01, lookup_window=0.5)
        return rerun(plan, store=store, options=options, runtime=runtime)


def test_a_rerun_it_loses_track_of_is_reported_like_a_timeout(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    with open_state(workspace.state) as store:
        selection = select_for_rerun(store, (), failed=True)
        plan = plan_reruns(selection, load_specs_for_operations([workspace.spec]))
        runtime = Runtime(transport=httpx.ASGITransport(app=LosesSightOfRuns(sim.app)))
        outcome = rerun(
            plan, store=store, options=ApplyOptions(poll_interval=0.01), runtime=runtime
        )

    (report,) = outcome.result.runs
    assert report.state is RunState.TIMEOUT
    assert "lost track of the rerun" in (report.message or "")
    assert "runner cancel ops/bad" in (report.message or "")
    assert outcome.exit_code == 4, "not a success: nobody knows how the rerun ended"
    record = workspace.latest("ops/bad")
    assert record.status.value == "timeout" and record.in_flight


def test_a_lost_rerun_that_cannot_be_looked_up_stays_uncertain_and_says_where_to_look(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    failed = workspace.counter("ops/bad")
    drop_answers_to(sim, "/scheduler/rerun")

    outcome = rerun_blind(workspace, sim)

    (report,) = outcome.result.runs
    assert report.state is RunState.UNCERTAIN
    assert f"Look for a rerun of run {failed}" in (report.message or "")
    assert outcome.exit_code == 5
    assert len(sim.requests("POST /scheduler/rerun")) == 1, "not sent again blindly"
    record = workspace.latest("ops/bad")
    assert record.status.value == "ambiguous"
    assert (record.message or "").startswith(f"rerun of run {failed}: ")
    status = run_cli("status")
    assert "Outcome uncertain (1)" in status.out
    assert f"rerun of run {failed}" in status.out


def leave_a_rerun_uncertain(run_cli: RunCli, workspace: Workspace, sim: Sim) -> int:
    """Fail ops/bad, then rerun it, losing the answer and sight of it; returns the
    runCounter of the run that was rerun."""
    assert run_cli(*apply_args("bad")).code == 3
    failed = workspace.counter("ops/bad")
    drop_answers_to(sim, "/scheduler/rerun")
    assert rerun_blind(workspace, sim).exit_code == 5
    return failed


def test_apply_resume_finds_an_uncertain_rerun_instead_of_sending_it_again(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    failed = leave_a_rerun_uncertain(run_cli, workspace, sim)

    result = run_cli("apply", "--resume", "--poll-interval", "0.05")

    (created,) = [run for run in sim.runs().values() if run["reRunID"] == failed]
    assert result.code == 3, result.text  # the rerun it found failed, as BROKEN does
    assert f"the interrupted apply fired it as run {created['runCounter']}" in result.err
    assert len(sim.requests("POST /scheduler/rerun")) == 1, "not sent again"
    record = workspace.latest("ops/bad")
    assert record.run_counter == created["runCounter"]
    assert record.status.value == "failed"
    assert record.message == f"rerun of run {failed}"


def test_apply_resume_refuses_a_rerun_whose_spec_changed_since(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    leave_a_rerun_uncertain(run_cli, workspace, sim)
    workspace.spec.write_text(workspace.spec.read_text().replace("2026-01-05", "2026-02-01"))

    result = run_cli("apply", "--resume", "--poll-interval", "0.05")

    assert result.code == 1
    assert "'ops/bad' would now be rerun with other settings" in result.err
    assert len(sim.requests("POST /scheduler/rerun")) == 1, "nothing more was sent"
