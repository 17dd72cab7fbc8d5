"""The client against the in-process simulator: the same wire models on both sides."""

from __future__ import annotations

import httpx
import pytest

from runner.coalesce import CoalesceAPIError, CoalesceClient, Started, dependency_edges, is_terminal
from runner.coalesce.requests import StartRunRequest
from runner.secrets import Secret

sim = pytest.importorskip("runner.sim")


def sim_client(clock: object) -> CoalesceClient:
    app = sim.create_app(clock=clock, seed=1)
    return CoalesceClient(
        "sim://", Secret(sim.DEMO_TOKEN), transport=httpx.ASGITransport(app=app), environ={}
    )


async def test_a_run_goes_from_start_to_an_end_state_through_the_client() -> None:
    clock = sim.ManualClock()
    async with sim_client(clock) as client:
        environments = await client.list_environments()
        nodes = await client.list_nodes(environments[0].id)
        outcome = await client.fire(
            StartRunRequest(environments[0].id, credentials={"snowflakeAuthType": "OAuth"})
        )
        assert isinstance(outcome, Started)
        status = await client.run_status(outcome.run_counter)
        for _ in range(200):
            if is_terminal(status.runStatus):
                break
            clock.advance(30)
            status = await client.run_status(outcome.run_counter)
        listed = [run.id async for run in client.iter_runs(environment_id=environments[0].id)]
        info = await client.get_run(outcome.run_counter)
        results = await client.run_results(outcome.run_counter)
    assert is_terminal(status.runStatus)
    assert dependency_edges(nodes)
    assert listed == [outcome.run_counter]
    assert info.runStatus == status.runStatus
    assert info.runDetails is not None and info.runDetails.environmentID == environments[0].id
    assert {r.name for r in results} <= {n.name for n in nodes}


async def test_the_simulator_refuses_a_wrong_token_with_the_401_hint() -> None:
    app = sim.create_app(clock=sim.ManualClock())
    async with CoalesceClient(
        "sim://",
        Secret("not-the-demo-token"),
        token_source="the environment variable COALESCE_TOKEN",
        transport=httpx.ASGITransport(app=app),
        environ={},
    ) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.list_environments()
    assert caught.value.status == 401
    assert "COALESCE_TOKEN" in str(caught.value)
    assert "not-the-demo-token" not in str(caught.value)
