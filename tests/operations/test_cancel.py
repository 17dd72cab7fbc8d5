"""``runner cancel``: cancelRun for runs in flight, by name or --all; runs that ended."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CliResult
from tests.operations.conftest import ENVIRONMENT_ID, RunCli, Sim, Workspace, apply_args


def test_cancel_all_cancels_every_run_in_flight_in_coalesce_and_in_the_journal(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("slow-a", "slow-b", wait=False)).code == 0
    counters = [workspace.counter(f"ops/{name}") for name in ("slow-a", "slow-b")]

    result: CliResult = run_cli("cancel", "--all")

    assert result.code == 0, result.text
    assert "Canceled 2 runs." in result.out
    runs = sim.runs()
    assert [runs[c]["status"] for c in counters] == ["canceled", "canceled"]
    bodies = [entry["body"] for entry in sim.requests("POST /scheduler/cancelRun")]
    assert sorted(b["runID"] for b in bodies) == sorted(counters)
    assert {b["environmentID"] for b in bodies} == {ENVIRONMENT_ID}
    for name in ("slow-a", "slow-b"):
        record = workspace.latest(f"ops/{name}")
        assert record.status.value == "canceled"
        assert record.ended_at is not None
    assert "No runs in flight." in run_cli("status").out


def test_cancel_by_name_cancels_only_the_runs_named(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("slow-a", "slow-b", wait=False)).code == 0
    slow_a = workspace.counter("ops/slow-a")
    slow_b = workspace.counter("ops/slow-b")

    result = run_cli("cancel", "ops/slow-a", "--format", "json")

    assert result.code == 0, result.text
    document = json.loads(result.out)
    assert [(r["name"], r["result"]) for r in document["runs"]] == [("slow-a", "canceled")]
    assert sim.runs()[slow_a]["status"] == "canceled"
    assert sim.runs()[slow_b]["status"] == "running"
    assert workspace.latest("ops/slow-a").status.value == "canceled"
    assert workspace.latest("ops/slow-b").in_flight


def test_cancel_by_glob(run_cli: RunCli, workspace: Workspace, sim: Sim) -> None:
    assert run_cli(*apply_args("slow-a", "slow-b", wait=False)).code == 0
    result = run_cli("cancel", "ops/slow-*")
    assert result.code == 0, result.text
    assert "Canceled 2 runs." in result.out
    assert {run["status"] for run in sim.runs().values()} == {"canceled"}


def test_a_run_that_already_finished_is_reported_with_its_status_not_as_an_error(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    # The journal says in flight (apply did not wait); Coalesce says completed.
    assert run_cli(*apply_args("good", wait=False)).code == 0
    counter = workspace.counter("ops/good")
    assert workspace.latest("ops/good").in_flight

    result = run_cli("cancel", "ops/good")

    assert result.code == 0, result.text
    line = next(line for line in result.out.splitlines() if "ops/good" in line)
    assert "already ended" in line and "completed" in line and f"run {counter}" in line
    assert "Canceled 0 runs; 1 had already ended." in result.out
    assert [e["status"] for e in sim.requests("POST /scheduler/cancelRun")] == [400]
    assert sim.runs()[counter]["status"] == "completed"
    assert workspace.latest("ops/good").status.value == "completed"


def test_naming_a_run_the_journal_knows_ended_needs_no_request(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("good")).code == 0
    result = run_cli("cancel", "ops/good")
    assert result.code == 0
    assert "already ended" in result.out and "completed" in result.out
    assert sim.requests("POST /scheduler/cancelRun") == []


def test_cancel_needs_names_or_all(run_cli: RunCli, workspace: Workspace) -> None:
    result = run_cli("cancel")
    assert result.code == 1
    assert "--all" in result.err


def test_a_name_that_matches_no_run_cancels_nothing(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    result = run_cli("cancel", "ops/slow-a", "ops/typo")
    assert result.code == 1
    assert "no run in the state matches 'ops/typo'; nothing was canceled" in result.err
    assert "ops/slow-a" in result.err  # the hint lists what is in flight
    assert sim.requests("POST /scheduler/cancelRun") == []
    assert workspace.latest("ops/slow-a").in_flight


def test_cancel_all_with_nothing_in_flight_reads_no_spec(
    run_cli: RunCli, workspace: Workspace
) -> None:
    workspace.spec.unlink()  # would be an error if cancel tried to read it
    result = run_cli("cancel", "--all")
    assert result.code == 0
    assert "Nothing in flight to cancel." in result.out


def test_a_missing_token_is_reported_per_run_and_fails_the_command(
    run_cli: RunCli, workspace: Workspace, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli(*apply_args("slow-a", wait=False)).code == 0
    monkeypatch.delenv("COALESCE_TOKEN")
    monkeypatch.delenv("SNOWFLAKE_PASSWORD")  # not needed to cancel
    result = run_cli("cancel", "--all")
    assert result.code == 1
    assert "NOT canceled" in result.out
    assert "no Coalesce token for 'ops': the environment variable COALESCE_TOKEN" in result.out
    assert workspace.latest("ops/slow-a").in_flight
