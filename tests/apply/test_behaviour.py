"""What a person sees apply do: exit codes, onFailure, --changed-only, --no-wait,
timeouts, a Failed Deploy environment, plan files and reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.apply import ApplyResult, RunReport, RunState
from runner.sim import SimApp
from runner.state import RunStatus, open_state
from tests.apply._support import FAILING, batch, run, world, write_spec

# About 10 s of real time at speed 10: long enough to outlast a test, short enough
# that a broken timeout or --no-wait fails the test instead of hanging it.
SLOW_MARTS = {"durations": [{"location": "MART", "seconds": 100}]}
MARTS = "{ location: MART }"


def _result(*states: RunState, interrupted: bool = False, errors: int = 0) -> ApplyResult:
    runs = tuple(RunReport("e", "b", f"r{i}", state=s) for i, s in enumerate(states))
    return ApplyResult(1, runs, interrupted=interrupted, errors=("boom",) * errors)


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (_result(RunState.COMPLETED, RunState.COMPLETED), 0),
        (_result(RunState.COMPLETED, RunState.WAITING_TO_RUN), 0),  # --no-wait
        (_result(RunState.COMPLETED, RunState.SKIPPED), 3),
        (_result(RunState.FAILED, RunState.CANCELED), 3),
        (_result(RunState.FAILED, RunState.TIMEOUT, RunState.SKIPPED), 4),
        (_result(RunState.TIMEOUT, RunState.NOT_STARTED), 1),
        (_result(RunState.COMPLETED, errors=1), 1),
        (_result(RunState.TIMEOUT, RunState.NOT_STARTED, interrupted=True, errors=1), 130),
    ],
)
def test_exit_code_precedence(result: ApplyResult, code: int) -> None:
    assert result.exit_code == code


def _sim_tags(app: SimApp) -> list[str]:
    return sorted(str(r.body["parameters"]["tag"]) for r in app.simulator.all_runs())


@pytest.mark.parametrize("on_failure", ["stop", "continue"])
def test_on_failure_stop_skips_later_batches_and_continue_goes_on(
    run_cli, embedded: SimApp, specs: Path, on_failure: str
) -> None:
    batches = [
        batch("first", [run("ok"), run("broken", FAILING)], onFailure=on_failure),
        batch("second", [run("after")]),
    ]
    write_spec(specs, "alpha", "1", "sim://", batches)

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 3, result.text
    assert "failed node BAD: SQL compilation error: invalid identifier" in result.out
    if on_failure == "stop":
        assert _sim_tags(embedded) == ["broken", "ok"]
        assert "skipped       alpha/after" in result.out
    else:
        assert _sim_tags(embedded) == ["after", "broken", "ok"]
        assert "completed     alpha/after" in result.out


def test_changed_only_fires_only_new_and_changed_runs(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("same"), run("edited")])])
    assert run_cli("apply", "--auto-approve", "--poll-interval", "0.02").code == 0
    edited = run("edited", parallelism=2)
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("same"), edited, run("added")])])
    embedded.simulator.observations.clear()

    result = run_cli("apply", "--auto-approve", "--changed-only", "--poll-interval", "0.02")

    assert result.code == 0, result.text
    fired = [r["body"]["parameters"]["tag"] for r in embedded.simulator.observations.log()
             if r["endpoint"] == "POST /scheduler/startRun"]  # fmt: skip
    assert sorted(fired) == ["added", "edited"]
    assert "alpha/same" not in result.out[result.out.index("Apply ") :]

    again = run_cli("apply", "--auto-approve", "--changed-only")
    assert again.code == 0 and "Nothing to fire. (--changed-only" in again.out


def test_no_wait_returns_once_the_last_batch_is_fired(
    run_cli, embed: Callable[..., SimApp], specs: Path, tmp_path: Path
) -> None:
    app = embed(world(behavior=SLOW_MARTS))
    # The timeouts only bound the test: were --no-wait to wait, these would time out.
    slow = [run("slow-a", MARTS, timeout=5), run("slow-b", MARTS, timeout=5)]
    batches = [batch("first", [run("quick")]), batch("last", slow)]
    write_spec(specs, "alpha", "1", "sim://", batches)

    result = run_cli("apply", "--auto-approve", "--no-wait", "--poll-interval", "0.02")

    assert result.code == 0, result.text
    statuses = {
        run.body["parameters"]["tag"]: run.status(app.clock.now())
        for run in app.simulator.all_runs()
    }
    assert statuses["quick"] == "completed", "an earlier batch is still waited for"
    assert {statuses["slow-a"], statuses["slow-b"]} <= {"waitingToRun", "running"}
    assert "Fired and not waited for (--no-wait)" in result.out
    store = open_state(tmp_path / ".runner" / "state.db")
    try:
        assert {r.run_counter for r in store.runs_in_flight("alpha")} == {
            r.id for r in app.simulator.all_runs() if r.body["parameters"]["tag"] != "quick"
        }
    finally:
        store.close()


def test_a_run_past_its_timeout_is_reported_as_timeout_and_apply_exits_4(
    run_cli, embed: Callable[..., SimApp], specs: Path, tmp_path: Path
) -> None:
    app = embed(world(behavior=SLOW_MARTS))
    batches = [
        batch("first", [run("slow", MARTS, timeout=0.3), run("quick")]),
        batch("second", [run("after")]),
    ]
    write_spec(specs, "alpha", "1", "sim://", batches)

    result = run_cli("apply", "--auto-approve", "--format", "json", "--poll-interval", "0.02")

    assert result.code == 4, result.text
    runs = {r["name"]: r for r in json.loads(result.out)["runs"]}
    assert runs["slow"]["status"] == "timeout"
    assert "runner cancel alpha/slow" in runs["slow"]["message"]
    assert runs["quick"]["status"] == "completed" and runs["after"]["status"] == "skipped"
    slow = next(r for r in app.simulator.all_runs() if r.body["parameters"]["tag"] == "slow")
    assert runs["slow"]["runCounter"] == slow.id
    assert slow.status(app.clock.now()) == "running", "apply stopped waiting; the run goes on"
    store = open_state(tmp_path / ".runner" / "state.db")
    try:
        assert store.find_run("alpha/slow").status is RunStatus.TIMEOUT  # type: ignore[union-attr]
    finally:
        store.close()


def test_failed_deploy_refuses_the_whole_environment_before_firing_there(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(
        specs, "broken", "4", "sim://",
        [batch("b", [run("forced", forceIgnoreEnvironmentStatus=True), run("plain")])],
    )  # fmt: skip
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("fine")])])

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 1, result.text
    assert _sim_tags(embedded) == ["fine"], "nothing is fired in the Failed Deploy environment"
    assert "environment 4 is in Failed Deploy" in result.out
    assert "refuse 'plain' (no forceIgnoreEnvironmentStatus)" in result.out  # names quoted
    assert "not-started   broken/forced" in result.out and "completed     alpha/fine" in result.out


def test_failed_deploy_with_every_run_forced_fires(run_cli, embedded: SimApp, specs: Path) -> None:
    write_spec(
        specs, "broken", "4", "sim://",
        [batch("b", [run("forced", forceIgnoreEnvironmentStatus=True)])],
    )  # fmt: skip

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 0, result.text
    assert _sim_tags(embedded) == ["forced"]


def test_a_plan_file_fires_exactly_the_planned_requests(
    run_cli, embedded: SimApp, specs: Path, tmp_path: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("one"), run("two", parallelism=3)])])
    write_spec(specs, "beta", "2", "sim://", [batch("b", [run("three")])])
    assert run_cli("plan", "--out", "plan.json", "--env", "alpha").code == 0
    planned = json.loads((tmp_path / "plan.json").read_text())
    embedded.simulator.observations.clear()

    result = run_cli("apply", "plan.json", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 0, result.text
    sent = [r["body"] for r in embedded.simulator.observations.log()
            if r["endpoint"] == "POST /scheduler/startRun"]  # fmt: skip
    requests = [run["request"] for run in planned["runs"]]
    key = json.dumps
    assert sorted(map(key, sent)) == sorted(map(key, requests))
    assert len(sent) == 2, "beta was not in the plan"


@pytest.mark.parametrize("change", ["spec", "state"])
def test_a_stale_plan_file_is_refused_before_any_request(
    run_cli, embedded: SimApp, specs: Path, tmp_path: Path, change: str
) -> None:
    spec = write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("one")])])
    assert run_cli("plan", "--out", "plan.json").code == 0
    if change == "spec":
        spec.write_text(spec.read_text().replace("tag: one", "tag: uno"))
    else:
        assert run_cli("apply", "--auto-approve", "--poll-interval", "0.02").code == 0
    embedded.simulator.observations.clear()

    result = run_cli("apply", "plan.json", "--auto-approve")

    assert result.code == 1
    assert "is stale" in result.err and "make a new plan" in result.err
    assert embedded.simulator.observations.log() == [], "no request at all"


def test_without_auto_approve_and_no_terminal_nothing_is_fired(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("one")])])

    result = run_cli("apply")

    assert result.code == 1
    assert "no terminal to ask on" in result.err and "--auto-approve" in result.err
    assert embedded.simulator.observations.log() == []


def test_report_and_github_step_summary_get_the_markdown_with_a_gantt_chart(
    run_cli, embedded: SimApp, specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("ok"), run("broken", FAILING)])])

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--report", "r.md")

    assert result.code == 3
    report = (tmp_path / "r.md").read_text()
    assert summary.read_text() == "## earlier step\n" + report
    assert "| alpha | b | ok | completed |" in report
    assert "| alpha | b | broken | failed |" in report and "BAD: SQL compilation error" in report
    gantt = report[report.index("```mermaid\n") :]
    assert gantt.startswith("```mermaid\ngantt\n") and gantt.rstrip().endswith("```")
    assert "    section alpha" in gantt
    assert " ok :done, " in gantt and " broken :crit, " in gantt


def test_the_json_document_carries_failed_nodes_and_run_links(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("ok"), run("broken", FAILING)])])

    result = run_cli("apply", "--auto-approve", "--format", "json", "--poll-interval", "0.02")

    assert result.code == 3
    document = json.loads(result.out)
    assert (document["formatVersion"], document["kind"], document["exitCode"]) == (
        1, "runner-apply", 3,
    )  # fmt: skip
    runs = {r["name"]: r for r in document["runs"]}
    sim = {r.body["parameters"]["tag"]: r.id for r in embedded.simulator.all_runs()}
    broken = runs["broken"]
    assert (broken["environment"], broken["batch"], broken["status"]) == ("alpha", "b", "failed")
    assert broken["runCounter"] == sim["broken"] and broken["runLink"].endswith(f"/{sim['broken']}")
    assert [n["name"] for n in broken["failedNodes"]] == ["BAD"]
    assert broken["failedNodes"][0]["error"].startswith("SQL compilation error: invalid identifier")
    assert runs["ok"]["failedNodes"] == [] and runs["ok"]["runCounter"] == sim["ok"]


def test_resume_with_nothing_to_resume_says_so(run_cli, embedded: SimApp) -> None:
    result = run_cli("apply", "--resume")

    assert result.code == 1
    assert "there is no interrupted apply to resume" in result.err


def test_a_report_that_cannot_be_written_does_not_hide_how_the_apply_went(
    run_cli, embedded: SimApp, specs: Path, tmp_path: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("ok")])])
    (tmp_path / "taken").mkdir()

    nested = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--report", "a/b/r.md")
    blocked = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--report", "taken")

    assert (
        nested.code == 0 and "| alpha | b | ok | completed |" in (tmp_path / "a/b/r.md").read_text()
    )
    assert blocked.code == 0, "the apply succeeded; only its report is missing"
    assert "could not write the report (--report) to taken" in blocked.err


def test_every_fired_run_gets_its_link_without_asking_for_it(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("ok"), run("broken", FAILING)])])

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--format", "json")

    assert result.code == 3, result.err
    runs = {r["name"]: r for r in json.loads(result.out)["runs"]}
    for name in ("ok", "broken"):
        assert runs[name]["runLink"] == f"http://sim/runs/{runs[name]['runCounter']}"
    endpoints = [e["endpoint"] for e in embedded.simulator.observations.log()]
    # The failed run's status was asked for (with its failed nodes); the completed one's not.
    assert endpoints.count("GET /scheduler/runStatus") == 1
    with open_state(specs.parent / ".runner" / "state.db", readonly=True) as store:
        record = store.find_run("alpha/ok")
    assert record is not None and record.run_link == runs["ok"]["runLink"]  # and recorded
