"""Runs move through their states on the clock, in dependency order, within parallelism.

Timeline of a full run of the small world (created at t=0, start delay 1 s):
S1-S3 1-2, T1-T3 2-4, F1/F2 4-7, M1/M2 7-9, M3 9-11.
"""

from __future__ import annotations

from itertools import pairwise

import httpx
import pytest

from runner.coalesce.models import RunInfo, RunResultsResponse, RunStatusResponse, is_terminal
from runner.sim import ManualClock
from tests.sim.conftest import AUTH, node_window, results, seconds, start, status

GRAPH = {
    "T1": ["S1"],
    "T2": ["S2"],
    "T3": ["S3"],
    "F1": ["T1", "T2"],
    "F2": ["T3"],
    "M1": ["F1"],
    "M2": ["F2"],
    "M3": ["M2"],
}


async def test_a_run_waits_then_runs_then_completes_on_the_clock(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    run = await start(client, {"environmentID": "3"})
    seen = []
    for step in (0.0, 0.999, 0.001, 9.999, 0.001):
        clock.advance(step)
        seen.append(await status(client, run))
    assert seen == ["waitingToRun", "waitingToRun", "running", "running", "completed"]
    response = await client.get("/scheduler/runStatus", params={"runCounter": run}, headers=AUTH)
    answer = RunStatusResponse.model_validate(response.json())
    assert answer.terminal and answer.runType == "refresh"
    assert answer.runLink == f"http://sim/runs/{run}"


async def test_run_counters_increase_per_created_run(client: httpx.AsyncClient) -> None:
    counters = [await start(client, {"environmentID": env}) for env in ("1", "3", "1")]
    assert counters == [1, 2, 3]


def assert_dependency_order(by_name: dict[str, dict[str, object]]) -> None:
    for node, upstream in GRAPH.items():
        if node not in by_name:
            continue
        node_start, _ = node_window(by_name[node])
        for parent in upstream:
            if parent in by_name:
                _, parent_end = node_window(by_name[parent])
                assert node_start >= parent_end, f"{node} started before {parent} ended"


def most_at_once(windows: list[tuple[float, float]]) -> int:
    moments = sorted({start for start, _ in windows})
    return max(sum(1 for s, e in windows if s <= moment < e) for moment in moments)


@pytest.mark.parametrize("parallelism", [1, 2, 3])
async def test_nodes_run_in_dependency_order_and_within_parallelism(
    client: httpx.AsyncClient, clock: ManualClock, parallelism: int
) -> None:
    run = await start(client, {"environmentID": "3", "parallelism": parallelism})
    clock.advance(100)
    assert await status(client, run) == "completed"
    by_name = await results(client, run)
    assert len(by_name) == 11 and all(r["runState"] == "complete" for r in by_name.values())
    assert_dependency_order(by_name)
    windows = [node_window(result) for result in by_name.values()]
    assert most_at_once(windows) == parallelism  # the limit holds, and is used


async def test_with_parallelism_one_nodes_run_one_after_another_upstream_first(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    run = await start(client, {"environmentID": "3", "parallelism": 1})
    clock.advance(100)
    by_name = await results(client, run)
    order = sorted(by_name, key=lambda name: node_window(by_name[name])[0])
    assert order == ["S1", "S2", "S3", "T1", "T2", "T3", "F1", "F2", "M1", "M2", "M3"]
    windows = sorted(node_window(r) for r in by_name.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(windows))


async def test_a_failed_node_skips_everything_downstream_of_it_only(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    run = await start(client, {"environmentID": "1"})
    clock.advance(7.5)  # F2 has failed at t=7; M1 is running
    assert await status(client, run) == "running"
    partial = await results(client, run)
    assert partial["F2"]["runState"] == "failed"
    assert partial["M1"]["runState"] == "running" and partial["M1"]["isRunning"] is True
    assert {partial["M2"]["runState"], partial["M3"]["runState"]} == {"skipped"}

    clock.advance(100)
    assert await status(client, run) == "failed"
    response = await client.get(f"/api/v1/runs/{run}/results", headers=AUTH)
    parsed = {r.name: r for r in RunResultsResponse.model_validate(response.json()).data}
    failed = parsed["F2"].failed_queries
    assert len(failed) == 1 and failed[0].error is not None
    assert (failed[0].error.errorString, failed[0].error.errorDetail) == (
        "Division by zero",
        "in F2",
    )
    for skipped in ("M2", "M3"):
        assert parsed[skipped].runState == "skipped"
        assert parsed[skipped].renderQueryResult is None  # never started
        [query] = parsed[skipped].queryResults
        assert query.error is not None
        assert query.error.errorString == "Skipped because upstream node FACT.F2 failed"
    assert {name for name, r in parsed.items() if r.runState == "complete"} == {
        "S1",
        "S2",
        "S3",
        "T1",
        "T2",
        "T3",
        "F1",
        "M1",
    }
    info = (await client.get(f"/api/v1/runs/{run}", headers=AUTH)).json()
    assert info["runFailureReason"] == "1 node failed: FACT.F2"
    assert seconds(info["runEndTime"]) - seconds(info["runStartTime"]) == pytest.approx(9.0)


async def test_cancel_freezes_the_run_and_cancels_running_nodes(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    run = await start(client, {"environmentID": "3"})
    clock.advance(5)  # F1 and F2 are running
    response = await client.post(
        "/scheduler/cancelRun",
        json={"runID": run, "environmentID": "3", "orgID": "x"},
        headers=AUTH,
    )
    assert response.status_code == 204 and response.content == b""
    assert await status(client, run) == "canceled"
    clock.advance(100)
    assert await status(client, run) == "canceled"
    by_name = await results(client, run)
    states = {name: r["runState"] for name, r in by_name.items()}
    assert states == {
        **dict.fromkeys(["S1", "S2", "S3", "T1", "T2", "T3"], "complete"),
        **dict.fromkeys(["F1", "F2", "M1", "M2", "M3"], "canceled"),
    }
    last_query = by_name["F1"]["queryResults"][-1]
    assert last_query["status"] == "Canceled" and last_query["endTime"] is not None
    assert by_name["M1"]["queryResults"] == []
    info = RunInfo.model_validate((await client.get(f"/api/v1/runs/{run}", headers=AUTH)).json())
    assert info.runDetails is not None and info.runDetails.canceled is True
    assert info.runEndTime is not None and info.runStartTime is not None
    assert seconds(info.runEndTime) - seconds(info.runStartTime) == pytest.approx(5.0)

    again = await client.post("/scheduler/cancelRun", json={"runID": run}, headers=AUTH)
    assert again.status_code == 400
    assert "already ended (canceled)" in again.json()["error"]["errorString"]


async def test_cancel_checks_the_environment_of_the_run(client: httpx.AsyncClient) -> None:
    run = await start(client, {"environmentID": "3"})
    response = await client.post(
        "/scheduler/cancelRun", json={"runID": str(run), "environmentID": "1"}, headers=AUTH
    )
    assert response.status_code == 400
    assert await status(client, run) == "waitingToRun"


async def test_rerun_runs_only_failed_and_skipped_nodes_without_the_old_parameters(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "1"}, parameters={"region": "apac"})
    early = await client.post(
        "/scheduler/rerun", json={"runDetails": {"runID": str(first)}}, headers=AUTH
    )
    assert early.status_code == 400 and "still" in early.json()["error"]["errorString"]
    clock.advance(100)

    response = await client.post(
        "/scheduler/rerun",
        json={
            "runDetails": {"runID": str(first)},
            "userCredentials": {"snowflakeAuthType": "OAuth"},
        },
        headers=AUTH,
    )
    assert response.status_code == 200
    second = response.json()["runCounter"]
    clock.advance(100)
    assert set(await results(client, second)) == {"F2", "M2", "M3"}
    info = (await client.get(f"/api/v1/runs/{second}", headers=AUTH)).json()
    assert info["reRunID"] == first
    assert info["runTimeParameters"] == {"region": "emea"}  # the environment's, not "apac"
    summary = (await client.get("/api/v1/runs", params={"limit": 1}, headers=AUTH)).json()["data"][
        0
    ]
    assert summary["id"] == second and summary["reRunID"] == first


async def test_rerun_with_parameters_uses_them(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "1"})
    clock.advance(100)
    response = await client.post(
        "/scheduler/rerun",
        json={"runDetails": {"runID": first, "parallelism": 1}, "parameters": {"region": "us"}},
        headers=AUTH,
    )
    info = (await client.get(f"/api/v1/runs/{response.json()['runCounter']}", headers=AUTH)).json()
    assert info["runTimeParameters"] == {"region": "us"}
    assert info["runDetails"]["parallelism"] == 1


async def test_rerun_of_a_canceled_run_runs_what_did_not_complete(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "3"})
    clock.advance(3)  # S done, T running
    await client.post("/scheduler/cancelRun", json={"runID": first}, headers=AUTH)
    response = await client.post(
        "/scheduler/rerun", json={"runDetails": {"runID": first}}, headers=AUTH
    )
    clock.advance(100)
    rerun = response.json()["runCounter"]
    assert set(await results(client, rerun)) == {"T1", "T2", "T3", "F1", "F2", "M1", "M2", "M3"}
    assert await status(client, rerun) == "completed"


async def test_a_run_without_failures_has_nothing_to_rerun(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "3"})
    clock.advance(100)
    response = await client.post(
        "/scheduler/rerun", json={"runDetails": {"runID": first}}, headers=AUTH
    )
    assert response.status_code == 400
    assert "nothing to rerun" in response.json()["error"]["errorString"]


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"jobID": "1"}, {"T1", "T2", "T3"}),
        ({"jobID": "2"}, {"F1", "M1"}),
        ({"jobID": "2", "excludeNodesSelector": "{ location: MART }"}, {"F1"}),
        ({"jobID": "1", "includeNodesSelector": "{ name: S1 }"}, {"S1"}),
        ({"includeNodesSelector": "+{ name: F1 }"}, {"S1", "S2", "T1", "T2", "F1"}),
        (
            {"excludeNodesSelector": "{ location: SRC } OR { location: STG }"},
            {"F1", "F2", "M1", "M2", "M3"},
        ),
        ({"includeNodesSelector": "{ location: NOWHERE }"}, set()),
    ],
)
async def test_jobs_and_selectors_choose_the_nodes(
    client: httpx.AsyncClient, clock: ManualClock, details: dict[str, str], expected: set[str]
) -> None:
    run = await start(client, {"environmentID": "3", **details})
    clock.advance(100)
    assert set(await results(client, run)) == expected
    assert await status(client, run) == "completed"
    info = (await client.get(f"/api/v1/runs/{run}", headers=AUTH)).json()
    assert info["runDetails"]["nodesInRun"] == len(expected)


async def test_runs_beyond_the_environment_limit_wait_their_turn(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "3", "jobID": "1"})  # runs t=1..3
    second = await start(client, {"environmentID": "3", "jobID": "1"})
    clock.advance(2)
    assert [await status(client, first), await status(client, second)] == [
        "running",
        "waitingToRun",
    ]
    clock.advance(1)
    assert [await status(client, first), await status(client, second)] == ["completed", "running"]
    counters = (await client.get("/_sim/counters")).json()["environments"]["3"]
    assert counters == {"maxRunning": 1, "maxActive": 2}


async def test_canceling_a_run_lets_the_next_queued_run_start_at_once(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await start(client, {"environmentID": "3"})
    second = await start(client, {"environmentID": "3", "jobID": "1"})
    clock.advance(4)
    assert await status(client, second) == "waitingToRun"
    await client.post("/scheduler/cancelRun", json={"runID": first}, headers=AUTH)
    assert await status(client, second) == "running"
    clock.advance(2)
    assert await status(client, second) == "completed"


async def test_runs_of_an_unlimited_environment_run_concurrently(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    runs = [await start(client, {"environmentID": "1", "jobID": "1"}) for _ in range(3)]
    clock.advance(1.5)
    assert [await status(client, run) for run in runs] == ["running"] * 3
    counters = (await client.get("/_sim/counters")).json()["environments"]
    assert counters["1"] == {"maxRunning": 3, "maxActive": 3}
    assert counters["3"] == {"maxRunning": 0, "maxActive": 0}


async def test_an_environment_shows_refreshing_while_a_run_is_active(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    async def env_status() -> str:
        value: str = (await client.get("/api/v1/environments/1", headers=AUTH)).json()["status"]
        return value

    assert await env_status() == "Waiting"
    await start(client, {"environmentID": "1", "jobID": "1"})
    assert await env_status() == "Refreshing"
    clock.advance(100)
    assert await env_status() == "Waiting"
    broken = (await client.get("/api/v1/environments/2", headers=AUTH)).json()
    assert broken["status"] == "Failed Deploy"


async def test_statuses_are_only_documented_values_and_end_terminal(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    runs = [await start(client, {"environmentID": env}) for env in ("1", "3")]
    seen: set[str] = set()
    for _ in range(30):
        clock.advance(0.5)
        seen.update([await status(client, run) for run in runs])
    assert seen <= {"waitingToRun", "running", "completed", "failed"}
    final = [await status(client, run) for run in runs]
    assert final == ["failed", "completed"] and all(is_terminal(value) for value in final)


async def test_results_of_a_waiting_run_are_empty(client: httpx.AsyncClient) -> None:
    run = await start(client, {"environmentID": "3"})
    assert await results(client, run) == {}
