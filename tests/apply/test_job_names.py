"""Jobs by name: an online plan resolves ``job: NAME`` to the job's ID in that
environment and a saved plan keeps that ID; apply fires exactly that job, and refuses a
plan whose name has since come to mean another job, or none. A ``jobID`` is checked and
shown with what Coalesce calls it. Against the simulator over a real socket."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.apply._support import (
    FROZEN,
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    fired,
    run,
    world,
    write_spec,
)
from tests.conftest import CliResult

RunCli = Callable[..., CliResult]
JOBS = [
    {"id": "5", "name": "staging", "include": "{ location: STG }"},
    {"id": "6", "name": "marts", "include": "{ location: MART }"},
]


@pytest.fixture
def jobs_world(served: SimServer, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    data = world()
    data["projects"][0]["jobs"] = JOBS
    served.reset(data)
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    monkeypatch.setenv("RUNNER_STATE", "state.db")
    return served


def _spec(served: SimServer, **keys: Any) -> None:
    """One environment (alpha) with one run, ``nightly``, naming its job as ``keys`` say."""
    nightly = {"name": "nightly", "parameters": {"tag": "nightly"}, **keys}
    write_spec(Path("specs"), "alpha", "1", served.url, [batch("b", [nightly])])


def _fired_job_ids(served: SimServer) -> list[Any]:
    return [r["body"]["runDetails"].get("jobID") for r in served.start_runs()]


def _json(result: CliResult) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_a_name_is_resolved_shown_and_fired_as_its_job(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")

    shown = run_cli("plan")
    assert shown.code == 0, shown.err
    assert 'job: "marts" (6)' in shown.out
    [planned] = _json(run_cli("plan", "--format", "json"))["runs"]
    assert planned["request"]["runDetails"]["jobID"] == "6"
    assert planned["job"] == {
        "id": "6",
        "name": "marts",
        "byName": True,
        "includeSelector": "{ location: MART }",
        "excludeSelector": None,
    }
    # Resolved with the job's own selectors: the nodes the simulator will run.
    assert planned["selection"]["nodes"] == ["M1"]

    applied = run_cli("apply", "--auto-approve", "--poll-interval", "0.05")
    assert applied.code == 0, applied.err
    assert _fired_job_ids(jobs_world) == ["6"]
    [sent] = jobs_world.start_runs()
    assert "marts" not in json.dumps(sent["body"])  # startRun has no name field
    assert [[n["name"] for n in r["nodes"]] for r in jobs_world.runs()] == [["M1"]]


def test_a_misspelt_name_gets_the_closest_names_and_fires_nothing(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="mart")

    planned = run_cli("plan")
    assert planned.code == 1
    assert "environment 1 has no job called 'mart' (its jobs: 5 'staging', 6 'marts')" in (
        planned.out
    )
    assert "did you mean 'marts'?" in planned.out

    applied = run_cli("apply", "--auto-approve")
    assert applied.code == 1
    assert "did you mean 'marts'?" in applied.out + applied.err
    assert jobs_world.start_runs() == []


def test_a_name_two_jobs_share_is_an_error_naming_their_ids(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    data = world()
    data["projects"][0]["jobs"] = [*JOBS, {"id": "9", "name": "marts"}]
    jobs_world.reset(data)
    _spec(jobs_world, job="marts")

    planned = run_cli("plan")
    assert planned.code == 1
    assert "2 jobs of environment 1 are called 'marts' (IDs 6, 9): use jobID" in planned.out


@pytest.mark.parametrize(
    ("deployed", "said"),
    [
        (
            [JOBS[0]],
            "job 'marts', planned as job 6, no longer names one job: environment 1 has no job "
            "called 'marts'",
        ),
        ([JOBS[0], {**JOBS[1], "id": "8"}], "job 'marts' is now job 8, not job 6 as planned"),
        (
            [*JOBS, {"id": "9", "name": "marts"}],
            "job 'marts', planned as job 6, no longer names one job: 2 jobs of environment 1 "
            "are called 'marts' (IDs 6, 9)",
        ),
    ],
    ids=["deleted", "renumbered", "now-shared"],
)
def test_a_saved_plan_whose_name_moved_is_refused_as_stale(
    jobs_world: SimServer, run_cli: RunCli, deployed: list[dict[str, Any]], said: str
) -> None:
    _spec(jobs_world, job="marts")
    assert run_cli("plan", "--out", "plan.json").code == 0

    jobs_world.post("/_sim/projects/1/jobs", {"jobs": deployed})
    applied = run_cli(
        "apply", "plan.json", "--auto-approve", "--format", "json", "--poll-interval", "0.05"
    )

    assert jobs_world.start_runs() == []
    [report] = _json(applied)["runs"]
    assert report["status"] == "not-started"
    assert said in report["message"]
    assert "The plan is stale, so nothing was fired here" in report["message"]
    assert applied.code != 0


def test_a_saved_plan_fires_its_own_id_while_the_name_holds(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")
    assert run_cli("plan", "--out", "plan.json").code == 0
    # Another job is deployed beside it: the name still means job 6.
    jobs_world.post("/_sim/projects/1/jobs", {"jobs": [*JOBS, {"id": "7", "name": "other"}]})

    applied = run_cli("apply", "plan.json", "--auto-approve", "--poll-interval", "0.05")

    assert applied.code == 0, applied.err
    assert _fired_job_ids(jobs_world) == ["6"]


def test_an_offline_plan_shows_the_name_unresolved_and_is_not_applied(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")

    offline = run_cli("plan", "--offline", "--out", "plan.json")
    assert offline.code == 0, offline.err
    assert 'job: "marts" (not resolved: the plan did not read Coalesce)' in offline.out
    applied = run_cli("apply", "plan.json", "--auto-approve")

    assert applied.code == 1
    assert "names its job 'marts', which the plan did not resolve to a job ID" in applied.err
    assert jobs_world.start_runs() == []


def test_a_job_id_is_shown_with_its_name_and_selectors(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, jobID="5")

    shown = run_cli("plan")

    assert shown.code == 0, shown.err
    assert 'jobID: "5" (job "staging", include "{ location: STG }")' in shown.out


def test_an_unknown_job_id_is_refused_by_the_plan_naming_the_jobs(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, jobID="77")

    shown = run_cli("plan")

    assert shown.code == 1
    assert "jobID '77' is not a job of environment 'alpha'" in shown.out
    assert "whose jobs are: 5 'staging', 6 'marts'" in shown.out


def test_a_coalesce_without_the_jobs_list_reads_ids_one_by_one_and_refuses_names(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    data = world()
    data["projects"][0]["jobs"] = JOBS
    data["listsJobs"] = False
    jobs_world.reset(data)
    write_spec(
        Path("specs"),
        "alpha",
        "1",
        jobs_world.url,
        [
            batch(
                "b",
                [
                    run("known", jobID="5"),
                    run("unknown", jobID="77"),
                    {"name": "named", "job": "marts"},
                ],
            )
        ],
    )

    shown = run_cli("plan")

    assert shown.code == 1
    assert "does not list its jobs and answered 404 for this one" in shown.out  # 77
    assert "does not list the jobs of environment 1 (it answered 404), so job 'marts'" in (
        shown.out
    )
    assert 'jobID: "5" (job "staging"' in shown.out  # read by its ID
    asked = [f"{r['method']} {r['path']}" for r in jobs_world.requests()]
    assert "GET /api/v1/environments/1/jobs/5" in asked
    assert "GET /api/v1/environments/1/jobs/77" in asked


def test_the_deployed_commit_is_the_one_coalesce_shows(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")
    jobs_world.post("/_sim/environments/1", {"deployedCommit": "4f2c1e0"})

    document = _json(run_cli("plan", "--format", "json"))

    [environment] = document["environments"]
    assert environment["deployedCommit"] == "4f2c1e0"


def test_an_edited_job_id_in_a_plan_file_is_refused_before_anything_fires(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")
    assert run_cli("plan", "--out", "plan.json").code == 0
    document = json.loads(Path("plan.json").read_text())
    document["runs"][0]["request"]["runDetails"]["jobID"] = "5"  # the hash follows the request
    Path("plan.json").write_text(json.dumps(document))

    applied = run_cli("apply", "plan.json", "--auto-approve")

    assert applied.code == 1
    assert "fires job '5', which is not the job its plan resolved the name to" in applied.err
    assert "Plan files are not to be edited" in applied.err
    assert jobs_world.start_runs() == []


@pytest.mark.parametrize("moved", [False, True], ids=["same-job", "renumbered-meanwhile"])
def test_resume_fires_the_planned_job_unless_the_name_moved_meanwhile(
    jobs_world: SimServer, run_cli: RunCli, tmp_path: Path, moved: bool
) -> None:
    """Killed while its first batch runs, an apply is resumed: the run it never reached
    fires the job its plan resolved, or, if the name has come to mean another job
    meanwhile, nothing, as with a stale plan."""
    jobs_world.post("/_sim/clock", {"speed": FROZEN})
    named = {"name": "named", "job": "marts", "parameters": {"tag": "named"}}
    write_spec(
        Path("specs"),
        "alpha",
        "1",
        jobs_world.url,
        [batch("first", [run("first")]), batch("second", [named])],
    )
    apply = ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.05"],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(tmp_path / "state.db")},
    )
    try:
        apply.read_until(lambda lines: fired(lines, ["alpha/first"]), what="the first batch")
        apply.signal(signal.SIGKILL)
    finally:
        apply.kill()
    if moved:
        jobs_world.post("/_sim/projects/1/jobs", {"jobs": [JOBS[0], {**JOBS[1], "id": "8"}]})
    jobs_world.post("/_sim/clock", {"speed": 20})

    resumed = run_cli(
        "apply", "--resume", "--auto-approve", "--format", "json", "--poll-interval", "0.02"
    )

    reports = {r["name"]: r for r in _json(resumed)["runs"]}
    assert reports["first"]["status"] == "completed"
    if moved:
        assert _fired_job_ids(jobs_world) == [None]  # only the first batch's run, once
        assert reports["named"]["status"] == "not-started"
        assert "job 'marts' is now job 8, not job 6 as planned" in reports["named"]["message"]
    else:
        assert resumed.code == 0, resumed.err
        assert _fired_job_ids(jobs_world) == [None, "6"]
        assert reports["named"]["status"] == "completed"


def test_changed_only_fires_a_run_whose_name_now_means_another_job(
    jobs_world: SimServer, run_cli: RunCli
) -> None:
    _spec(jobs_world, job="marts")
    assert run_cli("apply", "--auto-approve", "--poll-interval", "0.05").code == 0
    again = run_cli("apply", "--changed-only", "--auto-approve", "--poll-interval", "0.05")
    assert again.code == 0 and "Nothing to fire" in again.out  # the same job: no change

    jobs_world.post("/_sim/projects/1/jobs", {"jobs": [JOBS[0], {**JOBS[1], "id": "8"}]})
    shown = run_cli("plan")
    assert '~ runDetails.jobID: "6" -> "8"' in shown.out
    moved = run_cli("apply", "--changed-only", "--auto-approve", "--poll-interval", "0.05")

    assert moved.code == 0, moved.err
    assert _fired_job_ids(jobs_world) == ["6", "8"]
