"""No two identical refreshes stacked by accident: a run Coalesce already runs (started by
its scheduler, a person or another runner) is waited for, skipped or fired beside, as
``ifRunning`` / ``--if-running`` say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apply._support import (
    FROZEN,
    STAGING,
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    run,
    tag_of,
    write_spec,
)


def _start_elsewhere(served: SimServer, tag: str) -> int:
    """Start a run on the simulator directly, as Coalesce's own scheduler would."""
    answer = httpx.post(
        f"{served.url}/scheduler/startRun",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "runDetails": {"environmentID": "1", "includeNodesSelector": STAGING},
            "parameters": {"tag": tag},
        },
    )
    answer.raise_for_status()
    counter: int = answer.json()["runCounter"]
    return counter


def _apply(tmp_path: Path, served: SimServer, *args: str, **spec: Any) -> ApplyProcess:
    write_spec(
        tmp_path / "specs", "alpha", "1", served.url, [batch("b", [run("a", **spec), run("b")])]
    )
    return ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.05", "--format", "json", *args],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(tmp_path / "state.db")},
    )


def _runs_tagged(served: SimServer, tag: str) -> list[dict[str, Any]]:
    return [r for r in served.runs() if tag_of(r) == tag]


def test_wait_fires_only_after_the_run_already_going_has_ended(
    tmp_path: Path, served: SimServer
) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})  # the run started elsewhere stays going
    twin = _start_elsewhere(served, "a")
    apply = _apply(tmp_path, served)
    try:
        apply.read_until(
            lambda lines: any(
                f"'a': already running as run {twin}" in x and "(ifRunning: wait)" in x
                for x in lines
            ),
            what="apply waiting for the run already going",
        )
        assert len(_runs_tagged(served, "a")) == 1, "nothing stacked on it meanwhile"
        served.post("/_sim/clock", {"speed": 10})
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 0, err
    first, ours = sorted(_runs_tagged(served, "a"), key=lambda r: r["runCounter"])
    assert first["runCounter"] == twin
    assert ours["createdAt"] >= first["endedAt"]
    assert {r["name"]: r["status"] for r in json.loads(out)["runs"]} == {
        "a": "completed",
        "b": "completed",
    }


@pytest.mark.parametrize("how", ["spec", "flag"])
def test_skip_records_the_run_as_skipped_and_fires_the_others(
    tmp_path: Path, served: SimServer, how: str
) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})
    twin = _start_elsewhere(served, "a")
    args = ("--if-running", "skip") if how == "flag" else ()
    spec = {"ifRunning": "skip"} if how == "spec" else {}
    apply = _apply(tmp_path, served, "--no-wait", *args, **spec)
    try:
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 3, err  # as for any skipped run
    assert [r["runCounter"] for r in _runs_tagged(served, "a")] == [twin]
    assert len(_runs_tagged(served, "b")) == 1
    skipped = next(r for r in json.loads(out)["runs"] if r["name"] == "a")
    assert skipped["status"] == "skipped"
    assert skipped["message"].startswith(f"skipped: already running as run {twin} since ")


def test_fire_fires_at_once_beside_the_run_already_going(tmp_path: Path, served: SimServer) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})
    twin = _start_elsewhere(served, "a")
    apply = _apply(tmp_path, served, "--no-wait", "--if-running", "fire")
    try:
        code, _, err = apply.finish()
    finally:
        apply.kill()

    assert code == 0, err
    assert len(_runs_tagged(served, "a")) == 2
    assert f"'a': already running as run {twin}" in err and "firing anyway" in err


def test_a_run_with_other_parameters_is_not_the_same_refresh(
    tmp_path: Path, served: SimServer
) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})
    _start_elsewhere(served, "another")
    apply = _apply(tmp_path, served, "--no-wait")
    try:
        code, _, err = apply.finish()
    finally:
        apply.kill()

    assert code == 0, err
    assert "already running" not in err
    assert len(_runs_tagged(served, "a")) == 1


def test_waiting_for_the_same_refresh_ends_at_the_runs_timeout_with_exit_4(
    tmp_path: Path, served: SimServer
) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})  # the run started elsewhere never ends
    twin = _start_elsewhere(served, "a")
    apply = _apply(tmp_path, served, "--no-wait", timeout="1s")
    try:
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 4, err
    assert [r["runCounter"] for r in _runs_tagged(served, "a")] == [twin]
    waited = next(r for r in json.loads(out)["runs"] if r["name"] == "a")
    assert waited["status"] == "not-started"
    assert f"run {twin}, the same refresh, was still going after 1s" in waited["message"]


def test_an_online_plan_marks_the_run_already_going_and_shows_the_deployed_commit(
    tmp_path: Path, served: SimServer
) -> None:
    served.post("/_sim/clock", {"speed": FROZEN})
    twin = _start_elsewhere(served, "a")
    write_spec(
        tmp_path / "specs",
        "alpha",
        "1",
        served.url,
        [batch("b", [run("a", ifRunning="skip"), run("b")])],
    )
    plan = ApplyProcess(
        ["--format", "json"],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(tmp_path / "state.db")},
        command="plan",
    )
    try:
        code, out, err = plan.finish()
    finally:
        plan.kill()

    assert code == 0, err  # a warning, not an error: apply knows what to do about it
    document = json.loads(out)
    [environment] = document["environments"]
    assert environment["deployedCommit"] == "0000000"
    runs = {r["name"]: r for r in document["runs"]}
    [marked] = runs["a"]["warnings"]
    assert marked["code"] == "already-running"
    assert marked["message"].startswith(f"already running as run {twin} since ")
    assert marked["message"].endswith("apply will skip this run (ifRunning: skip)")
    assert not [w for w in runs["b"]["warnings"] if w["code"] == "already-running"]
    assert len(served.start_runs()) == 1, "plan fires nothing"
