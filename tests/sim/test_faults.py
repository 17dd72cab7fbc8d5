"""Injected faults: seeded, per request, and a dropped answer after the run was created."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.sim import ManualClock, SimApp, create_app
from runner.sim.faults_cli import FaultOptions, apply_fault_options
from runner.sim.world import Faults
from tests.sim.conftest import AUTH, small_world

MIXED_FAULTS: dict[str, Any] = {
    "latency": {"probability": 0.5, "ms": 10, "maxMs": 50},
    "rateLimit": {"probability": 0.2, "retryAfter": 2},
    "serverError": {"probability": 0.3, "statuses": [500, 502, 503], "retryAfter": 4},
}


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def faulty_app(seed: int, faults: dict[str, Any], sleep: RecordingSleep | None = None) -> SimApp:
    return create_app(
        small_world(faults=faults), clock=ManualClock(), seed=seed, sleep=sleep or RecordingSleep()
    )


async def fault_sequence(app: SimApp, requests: int = 40) -> list[tuple[int, str | None]]:
    transport = httpx.ASGITransport(app=app)
    seen = []
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        for _ in range(requests):
            response = await client.get("/api/v1/environments", headers=AUTH)
            seen.append((response.status_code, response.headers.get("Retry-After")))
    return seen


async def test_the_same_seed_gives_the_same_faults_and_delays() -> None:
    sleeps = [RecordingSleep(), RecordingSleep()]
    first = await fault_sequence(faulty_app(11, MIXED_FAULTS, sleeps[0]))
    second = await fault_sequence(faulty_app(11, MIXED_FAULTS, sleeps[1]))
    assert first == second
    assert sleeps[0].delays == sleeps[1].delays
    assert all(0.010 <= delay <= 0.050 for delay in sleeps[0].delays) and sleeps[0].delays
    statuses = {status for status, _ in first}
    assert 200 in statuses and 429 in statuses and statuses & {500, 502, 503}
    assert all(retry == "2" for status, retry in first if status == 429)
    assert all(retry == "4" for status, retry in first if status == 503)
    assert all(retry is None for status, retry in first if status in (200, 500, 502))
    other = await fault_sequence(faulty_app(12, MIXED_FAULTS))
    assert other != first


async def test_fault_answers_use_the_error_body_and_do_nothing() -> None:
    app = faulty_app(1, {"rateLimit": {"probability": 1.0}})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        response = await client.post(
            "/scheduler/startRun", json={"runDetails": {"environmentID": "1"}}, headers=AUTH
        )
        assert response.status_code == 429
        assert response.json()["error"]["errorString"] == "429: Too Many Requests"
        assert (await client.get("/_sim/runs")).json()["data"] == []
        counters = (await client.get("/_sim/counters")).json()
        assert counters["faults"] == {"429": 1}
        assert counters["endpoints"] == {"POST /scheduler/startRun": 1}


async def test_a_dropped_answer_is_a_transport_error_but_the_run_exists() -> None:
    app = faulty_app(1, {"dropAfterCreate": {"probability": 1.0}})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(
                "/scheduler/startRun", json={"runDetails": {"environmentID": "1"}}, headers=AUTH
            )
        [run] = (await client.get("/_sim/runs")).json()["data"]
        assert run["runCounter"] == 1
        listed = (
            await client.get("/api/v1/runs", params={"environmentID": "1"}, headers=AUTH)
        ).json()
        assert [item["id"] for item in listed["data"]] == [1]  # reads are not dropped
        [entry, _] = (await client.get("/_sim/requests")).json()["data"]
        assert (entry["status"], entry["dropped"], entry["runCounter"], entry["fault"]) == (
            200,
            True,
            1,
            "drop",
        )
        counters = (await client.get("/_sim/counters")).json()
        assert counters["statuses"] == {"200": 1, "dropped": 1}
        assert counters["inFlight"] == 0


async def test_faults_can_be_changed_at_run_time_and_never_hit_sim_endpoints() -> None:
    app = faulty_app(5, {})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        ok = await client.get("/api/v1/environments", headers=AUTH)
        assert ok.status_code == 200
        changed = await client.post(
            "/_sim/faults",
            json={"serverError": {"probability": 1.0, "statuses": [502], "paths": ["/api/*"]}},
        )
        assert changed.status_code == 200
        assert changed.json()["faults"]["serverError"]["statuses"] == [502]
        assert (await client.get("/api/v1/environments", headers=AUTH)).status_code == 502
        status = await client.get("/scheduler/runStatus", params={"runCounter": 1}, headers=AUTH)
        assert status.status_code == 400  # not under /api/*: handled (and no such run)
        assert (await client.get("/_sim/counters")).status_code == 200
        bad = await client.post("/_sim/faults", json={"rateLimit": {"probability": 2}})
        assert bad.status_code == 400
        assert "rateLimit.probability" in bad.json()["error"]["errorDetail"]


async def test_reconfiguring_faults_restarts_the_seeded_sequence() -> None:
    app = faulty_app(9, MIXED_FAULTS)
    first = await fault_sequence(app, 20)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        await client.post("/_sim/faults", json=MIXED_FAULTS)
    assert await fault_sequence(app, 20) == first


def test_command_line_fault_options_override_the_world() -> None:
    world = small_world(faults={"rateLimit": {"probability": 0.5, "retryAfter": 9}})
    changed = apply_fault_options(
        world,
        FaultOptions(
            latency=(20.0, 300.0), server_errors=0.1, retry_after=3, drop_after_create=0.2
        ),
    )
    faults: Faults = changed.faults
    assert (faults.latency.ms, faults.latency.maxMs, faults.latency.probability) == (
        20.0,
        300.0,
        1.0,
    )
    assert (faults.rateLimit.probability, faults.rateLimit.retryAfter) == (0.5, 3)
    assert (faults.serverError.probability, faults.serverError.retryAfter) == (0.1, 3)
    assert faults.dropAfterCreate.probability == 0.2
    assert apply_fault_options(world, FaultOptions()) == world
