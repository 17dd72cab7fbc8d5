"""``runner import`` of the demo world's environments, on the simulator in this process
(``sim://``) and over a real socket (``runner sim``): the specs validate, and a plan of
each shows every imported run's request as Coalesce's history shows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.runtime
from runner.sim import DEMO_TOKEN, SimApp, create_app
from tests.conftest import CliResult
from tests.sim.served import Served, serve, stop

CREDENTIALS = {
    "snowflakeAuthType": "Basic",
    "snowflakeUsername": "SVC_RUNNER",
    "snowflakePassword": "history-password-9f3b1c",
    "snowflakeWarehouse": "TRANSFORMING",
    "snowflakeRole": "TRANSFORMER",
}


def _bodies(environment: str) -> list[dict[str, Any]]:
    """What people and schedulers fired in an environment (QA needs the force flag)."""
    force = {"forceIgnoreWorkspaceStatus": True} if environment == "3" else {}

    def body(parameters: dict[str, str] | None = None, **details: Any) -> dict[str, Any]:
        item: dict[str, Any] = {
            "runDetails": {"environmentID": environment, **details, **force},
            "userCredentials": CREDENTIALS,
        }
        if parameters is not None:
            item["parameters"] = parameters
        return item

    return [
        body(jobID="1", parallelism=8),
        body(jobID="3"),
        body({"load_date": "2026-01-05"}, jobID="2"),
        body(jobID="4", parallelism=4, excludeNodesSelector="{ location: MART }"),
        body(includeNodesSelector="{ location: STG }"),
        body(includeNodesSelector="{ location: STG }"),
        body({"region": "apac"}, includeNodesSelector="{ location: DIM }", parallelism=2),
        body(includeNodesSelector="{ location: STG }", parallelism=8),  # = job 1's request
        body(),
    ]


def _history_request(info: dict[str, Any]) -> dict[str, Any]:
    """The request a run of ``GET /api/v1/runs/{id}`` shows, written out here."""
    details = info["runDetails"]
    body: dict[str, Any] = {"environmentID": details["environmentID"]}
    if details.get("jobID") is not None:
        body["jobID"] = str(details["jobID"])
    for key in ("includeNodesSelector", "excludeNodesSelector", "parallelism"):
        if details.get(key):
            body[key] = details[key]
    if details.get("forceIgnoreEnvironmentStatus"):
        body["forceIgnoreEnvironmentStatus"] = body["forceIgnoreWorkspaceStatus"] = True
    request: dict[str, Any] = {"runDetails": body}
    if info.get("runTimeParameters"):
        request["parameters"] = info["runTimeParameters"]
    return request


def _fill(client: httpx.Client) -> None:
    for environment in ("1", "2", "3"):
        for body in _bodies(environment):
            answer = client.post("/scheduler/startRun", json=body)
            assert answer.status_code == 200, answer.text


def _check_imports(
    run_cli: Callable[..., CliResult], history_of: Callable[[int], dict[str, Any]], url: str
) -> None:
    for environment, name in (("1", "dev"), ("2", "prod"), ("3", "qa")):
        imported = run_cli("import", environment, "--url", url, "--format", "json")
        assert imported.code == 0, imported.text
        document = json.loads(imported.out)
        path = Path(document["path"])
        assert path == Path("specs") / f"{name}.yaml" and path.exists()
        assert path.read_text(encoding="utf-8") == document["yaml"]

        names = [run["name"] for run in document["runs"]]
        assert names[:4] == ["staging-load", "core-model", "daily-sales-mart", "nightly"]
        # Job 1's request fired ad hoc is not repeated; STG twice is one run.
        assert len(names) == 7, names
        staging = document["runs"][0]
        assert staging["adHocRuns"] and staging["job"]["name"] == "Staging load"

        validated = run_cli("validate", str(path))
        assert validated.code == 0, validated.text

        planned = run_cli("plan", str(path), "--format", "json")
        assert planned.code == 0, planned.text
        requests = {
            run["name"]: run["request"]
            for run in json.loads(planned.out)["runs"]
            if run["environment"] == name
        }
        compared = 0
        for run in document["runs"]:
            request = dict(requests[run["name"]])
            credentials = request.pop("userCredentials")
            assert credentials == {**CREDENTIALS, "snowflakePassword": "(secret)"}
            for run_id in run["runs"]:
                assert request == _history_request(history_of(run_id)), (name, run_id)
                compared += 1
        assert compared == len(_bodies(environment)) - 1  # all but job 1's ad-hoc twin
        assert "history-password" not in path.read_text(encoding="utf-8")


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimApp]:
    app = create_app()
    monkeypatch.setattr(runner.runtime, "SIMULATOR", httpx.ASGITransport(app=app))
    monkeypatch.setenv("COALESCE_TOKEN", DEMO_TOKEN)
    yield app


def test_import_of_the_demo_world_in_process(
    embedded: SimApp, run_cli: Callable[..., CliResult]
) -> None:
    async def fill() -> dict[int, dict[str, Any]]:
        transport = httpx.ASGITransport(app=embedded)
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sim", headers=headers
        ) as client:
            for environment in ("1", "2", "3"):
                for body in _bodies(environment):
                    answer = await client.post("/scheduler/startRun", json=body)
                    assert answer.status_code == 200, answer.text
            runs = {}
            for item in (await client.get("/_sim/runs")).json()["data"]:
                run_id = item["runCounter"]
                runs[run_id] = (await client.get(f"/api/v1/runs/{run_id}")).json()
            return runs

    runs = asyncio.run(fill())
    _check_imports(run_cli, runs.__getitem__, "sim://")


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = serve()
    yield server
    stop(server)


def test_import_of_the_demo_world_over_a_socket(
    served: Served, run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", DEMO_TOKEN)
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    with httpx.Client(base_url=served.url, headers=headers) as client:
        client.post("/_sim/reset")
        _fill(client)
        _check_imports(
            run_cli, lambda run_id: client.get(f"/api/v1/runs/{run_id}").json(), served.url
        )
