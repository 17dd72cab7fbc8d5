"""``runner rerun``: rerun failed runs, re-sending parameters, credentials and the force
flag from the specs; journaled as a new apply."""

from __future__ import annotations

import json

import pytest

from runner.coalesce.requests import FORCE_KEYS
from runner.state import Outcome, open_state
from tests.conftest import CliResult
from tests.operations.conftest import BROKEN_ERROR, RunCli, Sim, Workspace, apply_args

RERUN = "POST /scheduler/rerun"


def rerun_args(*args: str) -> list[str]:
    return ["rerun", *args, "--auto-approve", "--poll-interval", "0.05"]


def test_rerun_failed_resends_the_parameters_of_only_the_failed_runs(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("good", "bad")).code == 3
    failed = workspace.counter("ops/bad")
    assert failed is not None

    result: CliResult = run_cli(*rerun_args("--failed", "--var", "region=apac"))

    sent = sim.requests(RERUN)
    assert len(sent) == 1  # good completed: it is not rerun
    body = sent[0]["body"]
    assert body["runDetails"]["runID"] == str(failed)
    assert body["parameters"] == {"region": "apac", "load_date": "2026-01-05"}
    assert all(body["runDetails"][key] is True for key in FORCE_KEYS)
    assert body["userCredentials"]["snowflakeUsername"] == "SVC_OPS"
    assert body["userCredentials"]["snowflakePassword"] == "(secret)"  # the log's redaction
    rerun_counter = sent[0]["runCounter"]
    assert sim.runs()[rerun_counter]["reRunID"] == failed
    assert sim.runs()[rerun_counter]["runTimeParameters"] == body["parameters"]
    # BROKEN fails again: exit 3, as apply.
    assert result.code == 3, result.text
    assert f"rerun of run {failed}, as run {rerun_counter}" in result.out
    assert f"failed node BROKEN: {BROKEN_ERROR}" in result.out


def test_a_rerun_is_journaled_as_a_new_apply(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("good", "bad")).code == 3
    failed = workspace.counter("ops/bad")

    assert run_cli(*rerun_args("--failed")).code == 3

    with workspace.read_state() as store:
        last = store.last_apply()
        assert last is not None and last.apply_id == 2
        assert last.outcome is not None and last.outcome.value == "failed"
        (record,) = store.runs_of_apply(2)
    assert record.identity == "ops/bad"
    assert record.message == f"rerun of run {failed}"
    assert record.status.value == "failed"
    assert record.run_counter == sim.requests(RERUN)[0]["runCounter"]
    assert [node["name"] for node in record.failed_nodes] == ["BROKEN"]
    status = run_cli("status")
    assert "Last apply: 2 (failed)" in status.out
    assert "runs: 1 failed" in status.out


def test_after_a_rerun_the_plan_compares_the_spec_with_what_was_fired(
    run_cli: RunCli, workspace: Workspace
) -> None:
    assert run_cli(*apply_args("good", "bad")).code == 3
    assert run_cli(*rerun_args("--failed")).code == 3
    plan = run_cli("plan", "specs", "--offline", "--run", "good", "--run", "bad")
    assert plan.code == 0, plan.text
    assert "= bad (unchanged)" in plan.out
    assert "= good (unchanged)" in plan.out


def test_rerun_by_name_and_its_json_document(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    failed = workspace.counter("ops/bad")

    result = run_cli(*rerun_args("ops/bad", "--format", "json"))

    assert result.code == 3
    document = json.loads(result.out)
    assert document["formatVersion"] == 1
    assert document["kind"] == "runner-rerun"
    (run,) = document["runs"]
    assert (run["name"], run["status"], run["rerunOf"]) == ("bad", "failed", failed)
    assert "Rerun 1 run" in result.err  # the preview stays out of the JSON


def test_rerun_no_wait_leaves_the_rerun_in_flight(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    result = run_cli(*rerun_args("--failed", "--no-wait"))
    assert result.code == 0, result.text
    assert workspace.latest("ops/bad").in_flight
    assert "runner status --refresh" in result.out


def test_nothing_to_rerun_when_the_last_apply_did_not_fail(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("good")).code == 0
    result = run_cli(*rerun_args("--failed"))
    assert result.code == 0
    assert "Nothing to rerun: the last apply (1) has no failed or canceled run." in result.out
    assert sim.requests(RERUN) == []


def test_a_named_run_that_completed_is_refused_before_anything_is_sent(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("good", "bad")).code == 3
    result = run_cli(*rerun_args("ops/good", "ops/bad"))
    assert result.code == 1
    assert "ops/good" in result.err and "completed: there is nothing to rerun" in result.err
    assert sim.requests(RERUN) == []


def test_without_auto_approve_and_no_terminal_nothing_is_sent(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    result = run_cli("rerun", "--failed")
    assert result.code == 1
    assert "no terminal to ask on" in result.err
    assert sim.requests(RERUN) == []
    with workspace.read_state() as store:
        last = store.last_apply()
    assert last is not None and last.apply_id == 1


def test_a_missing_credential_is_named_and_nothing_is_sent(
    run_cli: RunCli, workspace: Workspace, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    monkeypatch.delenv("SNOWFLAKE_PASSWORD")
    result = run_cli(*rerun_args("--failed"))
    assert result.code == 1
    assert "'ops/bad': secret not available: the environment variable SNOWFLAKE_PASSWORD" in (
        result.err
    )
    assert sim.requests(RERUN) == []


def test_rerun_needs_names_or_failed(run_cli: RunCli, workspace: Workspace) -> None:
    result = run_cli("rerun")
    assert result.code == 1
    assert "--failed" in result.err


def test_nothing_to_rerun_while_the_last_apply_is_still_in_flight_points_at_refresh(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    # Coalesce failed it at once, but the state still says waitingToRun.
    assert run_cli(*apply_args("bad", wait=False)).code == 0
    result = run_cli(*rerun_args("--failed"))
    assert result.code == 0
    assert "1 of its runs are still in flight" in result.out
    assert "runner status --refresh" in result.out
    assert run_cli("status", "--refresh").code == 0
    assert run_cli(*rerun_args("--failed")).code == 3
    assert len(sim.requests(RERUN)) == 1


def test_the_journal_records_the_arguments_each_command_was_given(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    # In this process, sys.argv is the test runner's: what counts is what runner was given.
    assert run_cli(*apply_args("bad")).code == 3
    assert run_cli(*rerun_args("--failed")).code == 3
    with workspace.read_state() as store:
        applied, reran = store.get_apply(1), store.get_apply(2)
    assert applied is not None and applied.argv == tuple(apply_args("bad"))
    assert reran is not None and reran.argv == tuple(rerun_args("--failed"))


def test_resume_of_a_rerun_that_kept_nothing_to_resume_from_says_it_was_a_rerun(
    run_cli: RunCli, workspace: Workspace, sim: Sim
) -> None:
    assert run_cli(*apply_args("bad")).code == 3
    with open_state(workspace.state) as store:
        # As reruns were recorded before they kept what a resume needs.
        old = store.begin_apply(
            who="someone", host="here", git_commit=None, environments=["ops"],
            argv=["rerun", "--failed"],
        )  # fmt: skip
        store.finish_apply(old, Outcome.INTERRUPTED)

    result = run_cli("apply", "--resume")

    assert result.code == 1
    assert f"apply {old} was a rerun (runner rerun --failed)" in result.err
    assert "run `runner rerun` again" in result.err
    assert sim.requests(RERUN) == []
