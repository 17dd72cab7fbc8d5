"""The product's Coalesce client against the simulator, served over a real socket and
embedded in-process (``sim://``): the same tests, both ways.

Both simulators run the small world on a manual clock, moved with ``/_sim/clock``, so
nothing here waits on real time.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from runner.coalesce.client import Clock, CoalesceClient
from runner.coalesce.errors import CoalesceAPIError
from runner.coalesce.models import RunInfo, dependency_edges
from runner.coalesce.outcomes import Ambiguous, CancelAccepted, Started
from runner.coalesce.requests import RerunRequest, StartRunRequest
from runner.runtime import Runtime
from runner.secrets import Secret
from runner.sim import ManualClock, embedded_app
from tests.sim.conftest import SMALL_WORLD, TOKEN, small_world
from tests.sim.served import Served, serve, stop

CANARY_PASSWORD = "CANARY-PASSWORD-integration-5e1"


async def no_sleep(seconds: float) -> None:
    """The client's retry waits, skipped."""


@dataclass
class Target:
    """A simulator and a client of it."""

    client: CoalesceClient
    control: httpx.AsyncClient  # for /_sim/

    async def advance(self, seconds: float) -> None:
        response = await self.control.post("/_sim/clock", json={"advance": seconds})
        assert response.status_code == 200, response.text

    async def faults(self, config: dict[str, Any]) -> None:
        response = await self.control.post("/_sim/faults", json=config)
        assert response.status_code == 200, response.text

    async def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = (await self.control.get("/_sim/counters")).json()
        return counters

    def other_client(self, token: str) -> CoalesceClient:
        return CoalesceClient(
            self.client.base_url,
            Secret(token),
            clock=Clock(sleep=no_sleep),
            mounts=Runtime.mounts(),
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    world = tmp_path_factory.mktemp("world") / "world.yaml"
    world.write_text(json.dumps(SMALL_WORLD))
    server = serve("--config", str(world), "--manual-clock")
    yield server
    stop(server)


@pytest.fixture(params=["socket", "embedded"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "socket":
        server: Served = request.getfixturevalue("served")
        url = server.url
        control = httpx.AsyncClient(base_url=url)
        await control.post("/_sim/reset")
        restore = None
    else:
        app = embedded_app()
        saved = (app.simulator.clock, app.simulator.world)
        app.simulator.clock = ManualClock(time.time())
        app.simulator.load(small_world())
        url = "sim://"
        control = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")

        def restore() -> None:
            app.simulator.clock, world = saved
            app.simulator.load(world)

    client = CoalesceClient(
        url, Secret(TOKEN), clock=Clock(sleep=no_sleep), mounts=Runtime.mounts()
    )
    try:
        yield Target(client, control)
    finally:
        await client.aclose()
        await control.aclose()
        if restore is not None:
            restore()


def start_body(environment: str, **details: Any) -> StartRunRequest:
    return StartRunRequest(
        environment,
        **details,
        credentials={
            "snowflakeAuthType": "Basic",
            "snowflakeUsername": "etl",
            "snowflakePassword": Secret(CANARY_PASSWORD),
        },
        parameters={"load_date": "2026-01-05"},
    )


async def started(target: Target, environment: str, **details: Any) -> int:
    outcome = await target.client.fire(start_body(environment, **details))
    assert isinstance(outcome, Started), outcome
    return outcome.run_counter


async def test_a_run_is_started_followed_and_read_back(target: Target) -> None:
    run = await started(target, "3", parallelism=2)
    assert (await target.client.run_status(run)).runStatus == "waitingToRun"
    await target.advance(2)
    assert (await target.client.run_status(run)).runStatus == "running"
    await target.advance(100)
    status = await target.client.run_status(run)
    assert status.terminal and status.runStatus == "completed"
    assert status.runLink is not None and status.runLink.endswith(f"/runs/{run}")

    info = await target.client.get_run(run)
    assert info.runTimeParameters == {"load_date": "2026-01-05"}
    assert info.runDetails is not None and info.runDetails.parallelism == 2
    assert info.userCredentials == {"snowflakeAuthType": "Basic", "snowflakeUsername": "etl"}
    results = await target.client.run_results(run)
    assert len(results) == 11 and all(r.runState == "complete" for r in results)
    log = (await target.control.get("/_sim/requests")).text
    assert CANARY_PASSWORD not in log and "(secret)" in log


async def test_a_job_is_run_by_its_id(target: Target) -> None:
    outcome = await target.client.fire(StartRunRequest("3", job_id="1"))
    assert isinstance(outcome, Started)
    info = await target.client.get_run(outcome.run_counter)
    assert info.runDetails is not None and info.runDetails.jobName == "staging"


async def test_failed_nodes_are_reported_and_rerun(target: Target) -> None:
    run = await started(target, "1")
    await target.advance(100)
    assert (await target.client.run_status(run)).runStatus == "failed"
    failed = {
        r.name: r.failed_queries for r in await target.client.run_results(run) if r.failed_queries
    }
    assert set(failed) == {"F2", "M2", "M3"}
    assert (
        failed["F2"][0].error is not None
        and failed["F2"][0].error.errorString == "Division by zero"
    )

    outcome = await target.client.fire(
        RerunRequest(run, credentials={"snowflakeAuthType": "OAuth"})
    )
    assert isinstance(outcome, Started)
    await target.advance(100)
    info: RunInfo = await target.client.get_run(outcome.run_counter)
    assert info.reRunID == run
    assert {r.name for r in await target.client.run_results(outcome.run_counter)} == {
        "F2",
        "M2",
        "M3",
    }


async def test_a_run_is_canceled(target: Target) -> None:
    run = await started(target, "3")
    await target.advance(5)
    outcome = await target.client.cancel_run(run, "3")
    assert isinstance(outcome, CancelAccepted) and outcome.run_id == run
    assert (await target.client.run_status(run)).runStatus == "canceled"
    with pytest.raises(CoalesceAPIError) as raised:
        await target.client.cancel_run(run, "3")
    assert raised.value.status == 400


async def test_runs_are_listed_page_by_page(target: Target) -> None:
    runs = [await started(target, "1" if index % 2 else "3", job_id="1") for index in range(5)]
    first = await target.client.list_runs(limit=2)
    assert [r.id for r in first.data] == [5, 4] and first.next == "4" and first.total == 5
    second = await target.client.list_runs(limit=2, starting_from=first.next)
    assert [r.id for r in second.data] == [3, 2]
    every = [run.id async for run in target.client.iter_runs(page_size=2)]
    assert every == sorted(runs, reverse=True)
    oldest_first = [
        run.id async for run in target.client.iter_runs(page_size=2, order_by_direction="asc")
    ]
    assert oldest_first == runs
    of_one = [run.id async for run in target.client.iter_runs(environment_id="1", page_size=1)]
    assert of_one == [4, 2]
    await target.advance(100)
    done = await target.client.list_runs(run_status="completed", detail=True)
    assert done.total == 5


async def test_environments_and_nodes_are_read(target: Target) -> None:
    environments = await target.client.list_environments()
    assert [(e.id, e.name, e.status) for e in environments] == [
        ("1", "dev", "Waiting"),
        ("2", "broken", "Failed Deploy"),
        ("3", "queued", "Waiting"),
    ]
    dev = await target.client.get_environment("1")
    assert dev.runTimeParameters == {"region": "emea"}
    nodes = await target.client.list_nodes("1")
    assert len(nodes) == 11
    edges = {(e.upstream.name, e.downstream.name) for e in dependency_edges(nodes)}
    assert {("S1", "T1"), ("T1", "F1"), ("T2", "F1"), ("M2", "M3")} <= edges
    plain = await target.client.list_nodes("1", detail=False)
    assert dependency_edges(plain) == []
    await started(target, "1")
    assert (await target.client.get_environment("1")).status == "Refreshing"


async def test_refusals_become_api_errors(target: Target) -> None:
    with pytest.raises(CoalesceAPIError) as unknown:
        await target.client.fire(start_body("99"))
    assert unknown.value.status == 400
    assert unknown.value.error_string == "Environment 99 not found"
    with pytest.raises(CoalesceAPIError) as failed_deploy:
        await target.client.fire(start_body("2"))
    assert failed_deploy.value.status == 400
    assert "Failed Deploy" in (failed_deploy.value.error_string or "")
    intruder = target.other_client("not-a-token")
    try:
        with pytest.raises(CoalesceAPIError) as denied:
            await intruder.list_environments()
    finally:
        await intruder.aclose()
    assert denied.value.status == 401
    assert (await target.counters())["runsCreated"] == 0


async def test_a_dropped_answer_is_ambiguous_and_the_run_can_be_found(target: Target) -> None:
    await target.faults({"dropAfterCreate": {"probability": 1.0}})
    outcome = await target.client.fire(start_body("1"))
    assert isinstance(outcome, Ambiguous) and outcome.status is None
    await target.faults({})
    found = await target.client.list_runs(environment_id="1")
    assert [run.id for run in found.data] == [1]
    counters = await target.counters()
    assert counters["endpoints"]["POST /scheduler/startRun"] == 1  # not sent again


async def test_a_503_with_retry_after_is_ambiguous_and_never_sent_again(target: Target) -> None:
    """A gateway's 503 says nothing about whether its backend created the run, Retry-After
    or not: the write is reported ambiguous after one try, never sent again."""
    await target.faults(
        {
            "serverError": {
                "probability": 0.5,
                "statuses": [503],
                "retryAfter": 0,
                "paths": ["/scheduler/*"],
            }
        }
    )
    outcomes = [await target.client.fire(start_body("3", job_id="1")) for _ in range(8)]
    started = [o for o in outcomes if isinstance(o, Started)]
    ambiguous = [o for o in outcomes if isinstance(o, Ambiguous)]
    counters = await target.counters()
    assert started and ambiguous and len(started) + len(ambiguous) == 8
    assert all(o.attempts == 1 and o.status == 503 for o in ambiguous)
    assert counters["statuses"] == {"200": len(started), "503": len(ambiguous)}


async def test_reads_retry_rate_limits(target: Target) -> None:
    await target.faults({"rateLimit": {"probability": 0.3, "retryAfter": 0, "paths": ["/api/*"]}})
    for _ in range(10):
        assert len(await target.client.list_environments()) == 3
    counters = await target.counters()
    assert counters["statuses"]["429"] > 0
    assert counters["statuses"]["200"] == 10
