"""Apply does not fire into an environment Coalesce is deploying: it waits for the deploy
to end (``--deploy-wait``), then fires, or gives up with exit code 4."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.apply._support import (
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    run,
    wait_until,
    write_spec,
)

ENVIRONMENT = "/_sim/environments/1"


def _environment_reads(served: SimServer) -> list[dict[str, Any]]:
    return [
        entry for entry in served.requests() if entry["endpoint"] == "GET /api/v1/environments/{id}"
    ]


def _apply(tmp_path: Path, served: SimServer, *args: str) -> ApplyProcess:
    write_spec(tmp_path / "specs", "alpha", "1", served.url, [batch("b", [run("a"), run("b")])])
    return ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.05", *args],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(tmp_path / "state.db")},
    )


def test_apply_waits_for_a_deploy_to_end_then_fires(tmp_path: Path, served: SimServer) -> None:
    served.post(ENVIRONMENT, {"status": "Deploying"})
    apply = _apply(tmp_path, served, "--format", "json")
    try:
        apply.read_until(
            lambda lines: any("is Deploying: waiting up to 600s" in line for line in lines),
            what="apply saying it waits for the deploy",
        )
        # It keeps looking while the deploy goes on, and fires nothing meanwhile.
        wait_until(lambda: len(_environment_reads(served)) >= 3, what="apply looking again")
        assert served.start_runs() == []
        served.post(ENVIRONMENT, {"status": "Waiting"})
        deployed_at = served.requests()[-1]["seq"]
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 0, err
    fired = served.start_runs()
    assert len(fired) == 2 and all(entry["seq"] > deployed_at for entry in fired)
    assert json.loads(out)["gaveUp"] == {}


def test_with_no_deploy_wait_a_deploying_environment_fires_nothing_and_exits_4(
    tmp_path: Path, served: SimServer
) -> None:
    served.post(ENVIRONMENT, {"status": "Initializing"})
    apply = _apply(tmp_path, served, "--deploy-wait", "0", "--format", "json")
    try:
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 4, err
    assert served.start_runs() == []
    document = json.loads(out)
    assert [r["status"] for r in document["runs"]] == ["not-started", "not-started"]
    assert document["gaveUp"]["alpha"].startswith(
        "environment 1 was still Initializing after 0s (--deploy-wait); nothing was fired"
    )
    assert document["errors"] == []


def test_runs_not_fired_for_a_deploy_are_fired_by_the_next_apply(
    tmp_path: Path, served: SimServer
) -> None:
    served.post(ENVIRONMENT, {"status": "Deleting"})
    first = _apply(tmp_path, served, "--deploy-wait", "0")
    try:
        code, out, _ = first.finish()
    finally:
        first.kill()
    assert code == 4
    assert "apply again once the deploy is done" in out
    assert "Not fired: fire just those, once Coalesce has finished deploying the environment" in out
    served.post(ENVIRONMENT, {"status": "Waiting"})

    again = _apply(tmp_path, served)
    try:
        code, _, err = again.finish()
    finally:
        again.kill()
    assert code == 0, err
    assert len(served.start_runs()) == 2


def test_the_simulator_refuses_a_status_coalesce_does_not_have(served: SimServer) -> None:
    response = served.http.post(ENVIRONMENT, json={"status": "Sleeping"})
    assert response.status_code == 400
    assert "Deploying" in response.text


def test_an_interrupt_ends_the_wait_for_a_deploy_and_fires_nothing(
    tmp_path: Path, served: SimServer
) -> None:
    served.post(ENVIRONMENT, {"status": "Deploying"})
    apply = _apply(tmp_path, served, "--format", "json")
    try:
        apply.read_until(
            lambda lines: any("is Deploying: waiting up to" in line for line in lines),
            what="apply waiting for the deploy",
        )
        apply.signal(signal.SIGINT)
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 130, err
    assert served.start_runs() == []
    runs = json.loads(out)["runs"]
    assert {(r["status"], r["message"]) for r in runs} == {
        ("not-started", "not fired: apply was interrupted")
    }
