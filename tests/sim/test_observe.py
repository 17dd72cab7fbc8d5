"""What /_sim/ shows: the request log (secrets redacted), counters, runs, reset, clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from runner.sim import ManualClock, SimApp, SimClock, create_app
from tests.sim.conftest import AUTH, SMALL_WORLD, small_world, start, status

CANARY_TOKEN = "CANARY-TOKEN-51c2"
CANARY_PASSWORD = "CANARY-PASSWORD-7f3a"
CANARY_KEY = "CANARYKEYBODY9d1e0123456789"
CANARY_PASS = "CANARY-KEYPASS-0b77"


async def test_the_request_log_never_holds_a_secret(clock: ManualClock) -> None:
    app = create_app(small_world(tokens=[CANARY_TOKEN]), clock=clock)
    headers = {"Authorization": f"Bearer {CANARY_TOKEN}"}
    key = (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{CANARY_KEY}\n-----END ENCRYPTED PRIVATE KEY-----"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        bodies: list[dict[str, Any]] = [
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {
                    "snowflakeUsername": "etl",
                    "snowflakePassword": CANARY_PASSWORD,
                },
            },
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {
                    "snowflakeAuthType": "KeyPair",
                    "snowflakeUsername": "etl",
                    "snowflakeKeyPairKey": key,
                    "snowflakeKeyPairPass": CANARY_PASS,
                },
            },
            {
                "runDetails": {"environmentID": "99"},
                "userCredentials": {"snowflakePassword": CANARY_PASSWORD},
            },
        ]
        for body in bodies:
            await client.post("/scheduler/startRun", json=body, headers=headers)
        await client.post(
            "/scheduler/startRun", content=f'{{"x": "{CANARY_PASSWORD}"', headers=headers
        )
        log = (await client.get("/_sim/requests")).json()["data"]
        runs = (await client.get("/_sim/runs")).json()["data"]
    shown = json.dumps(log) + json.dumps(runs)
    for canary in (CANARY_TOKEN, CANARY_PASSWORD, CANARY_KEY, CANARY_PASS):
        assert canary not in shown
    assert [entry["status"] for entry in log] == [200, 200, 400, 400]
    assert log[0]["headers"]["authorization"] == "(secret)"
    assert log[0]["body"]["userCredentials"]["snowflakePassword"] == "(secret)"
    assert log[1]["body"]["userCredentials"]["snowflakeKeyPairKey"] == "(secret)"
    assert log[1]["body"]["userCredentials"]["snowflakeKeyPairPass"] == "(secret)"
    assert log[3]["body"] is None and "not shown" in log[3]["bodyError"]
    assert runs[0]["request"] == log[0]["body"]


async def test_the_log_records_what_tests_of_the_product_need(client: httpx.AsyncClient) -> None:
    run = await start(
        client, {"environmentID": "1", "jobID": "1"}, parameters={"day": "2026-01-05"}
    )
    await status(client, run)
    log = (await client.get("/_sim/requests")).json()["data"]
    assert [(e["seq"], e["method"], e["endpoint"], e["status"], e["runCounter"]) for e in log] == [
        (1, "POST", "POST /scheduler/startRun", 200, 1),
        (2, "GET", "GET /scheduler/runStatus", 200, None),
    ]
    assert log[1]["query"] == {"runCounter": "1"}
    assert log[0]["body"]["parameters"] == {"day": "2026-01-05"}
    [record] = (await client.get("/_sim/runs")).json()["data"]
    assert (record["runCounter"], record["endpoint"], record["environmentID"]) == (
        1,
        "startRun",
        "1",
    )
    assert [node["name"] for node in record["nodes"]] == ["T1", "T2", "T3"]
    assert record["runTimeParameters"] == {"day": "2026-01-05"}


class Gate:
    """A stand-in for asyncio.sleep that holds every request until released."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.arrived += 1
        if self.arrived == self.expected:
            self.all_arrived.set()
        await self.release.wait()


async def test_counters_record_the_most_requests_in_flight(clock: ManualClock) -> None:
    gate = Gate(expected=3)
    world = small_world(faults={"latency": {"probability": 1.0, "ms": 5}})
    app = create_app(world, clock=clock, sleep=gate)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        calls = [
            asyncio.create_task(client.get("/api/v1/environments", headers=AUTH)) for _ in range(3)
        ]
        await gate.all_arrived.wait()
        during = (await client.get("/_sim/counters")).json()
        gate.release.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200, 200, 200]
        after = (await client.get("/_sim/counters")).json()
    assert (during["inFlight"], during["maxInFlight"]) == (3, 3)
    assert (after["inFlight"], after["maxInFlight"], after["requests"]) == (0, 3, 3)
    assert after["faults"] == {"latency": 3}


async def test_reset_forgets_runs_and_counts_and_can_load_a_new_world(
    client: httpx.AsyncClient, app: SimApp
) -> None:
    await start(client, {"environmentID": "1"})
    response = await client.post("/_sim/reset")
    assert response.json() == {"reset": True, "environments": ["1", "2", "3"]}
    counters = (await client.get("/_sim/counters")).json()
    assert (counters["requests"], counters["runsCreated"], counters["maxInFlight"]) == (0, 0, 0)
    assert (await client.get("/_sim/requests")).json()["data"] == []
    assert await start(client, {"environmentID": "1"}) == 1

    new_world = {**SMALL_WORLD, "environments": [{"id": "40", "name": "solo", "project": "7"}]}
    response = await client.post("/_sim/reset", json={"world": new_world})
    assert response.json()["environments"] == ["40"]
    envs = (await client.get("/api/v1/environments", headers=AUTH)).json()["data"]
    assert [env["name"] for env in envs] == ["solo"]

    bad = await client.post("/_sim/reset", json={"world": {"environments": [{"id": "x"}]}})
    assert bad.status_code == 400
    assert "environments[0].id" in bad.json()["error"]["errorDetail"]
    assert app.simulator.world.environments[0].name == "solo"  # unchanged by the bad reset


async def test_the_clock_endpoint_advances_a_manual_clock(client: httpx.AsyncClient) -> None:
    run = await start(client, {"environmentID": "3"})
    before = (await client.get("/_sim/clock")).json()
    assert before == {"kind": "manual", "now": "2026-01-05T06:00:00.000Z"}
    moved = (await client.post("/_sim/clock", json={"advance": 100})).json()
    assert moved["now"] == "2026-01-05T06:01:40.000Z"
    assert await status(client, run) == "completed"
    for body in ({"speed": 2}, {"advance": -1}, {}):
        assert (await client.post("/_sim/clock", json=body)).status_code == 400


def test_a_sim_clock_scales_real_time_and_keeps_it_across_speed_changes() -> None:
    real = [100.0]
    clock = SimClock(10, start=1000.0, monotonic=lambda: real[0])
    real[0] += 1.5
    assert clock.now() == 1015.0
    clock.set_speed(2)
    real[0] += 1.0
    assert clock.now() == 1017.0
    assert clock.describe()["speed"] == 2


async def test_the_log_can_be_read_from_a_sequence_number(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/api/v1/environments", headers=AUTH)
    newer = (await client.get("/_sim/requests", params={"since": 2})).json()["data"]
    assert [entry["seq"] for entry in newer] == [3]
    assert (await client.get("/_sim/requests", params={"since": "x"})).status_code == 400
