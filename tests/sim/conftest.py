"""Fixtures for the simulator tests: a small world, a manual clock, an in-process client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from runner.sim import ManualClock, SimApp, World, create_app, parse_world

TOKEN = "test-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

#: A small graph whose timing is easy to reason about:
#:   S1 -> T1 \
#:   S2 -> T2 -> F1 -> M1
#:   S3 -> T3 -> F2 -> M2 -> M3        (F2 fails in environment 1)
SMALL_WORLD: dict[str, Any] = {
    "version": 1,
    "seed": 3,
    "tokens": [TOKEN, "test-token-2"],
    "projects": [
        {
            "id": "7",
            "name": "Small",
            "nodes": [
                {"name": "S1", "location": "SRC", "nodeType": "Source"},
                {"name": "S2", "location": "SRC", "nodeType": "Source"},
                {"name": "S3", "location": "SRC", "nodeType": "Source"},
                {"name": "T1", "location": "STG", "dependsOn": ["S1"]},
                {"name": "T2", "location": "STG", "dependsOn": ["S2"]},
                {"name": "T3", "location": "STG", "dependsOn": ["S3"]},
                {"name": "F1", "location": "FACT", "nodeType": "Fact", "dependsOn": ["T1", "T2"]},
                {"name": "F2", "location": "FACT", "nodeType": "Fact", "dependsOn": ["T3"]},
                {"name": "M1", "location": "MART", "nodeType": "View", "dependsOn": ["F1"]},
                {"name": "M2", "location": "MART", "nodeType": "View", "dependsOn": ["F2"]},
                {"name": "M3", "location": "MART", "nodeType": "View", "dependsOn": ["MART.M2"]},
            ],
            "jobs": [
                {"id": "1", "name": "staging", "include": "{ location: STG }"},
                {"id": "2", "name": "F1 and below", "include": "{ name: F1 }+"},
            ],
        }
    ],
    "environments": [
        {"id": "1", "name": "dev", "project": "7", "parameters": {"region": "emea"}},
        {"id": "2", "name": "broken", "project": "7", "status": "Failed Deploy"},
        {"id": "3", "name": "queued", "project": "7", "maxConcurrentRuns": 1},
    ],
    "behavior": {
        "startDelay": 1.0,
        "nodeSeconds": 2.0,
        "durations": [
            {"location": "SRC", "seconds": 1.0},
            {"location": "FACT", "seconds": 3.0},
        ],
        "failures": [
            {
                "name": "F2",
                "environments": ["1"],
                "error": "Division by zero",
                "detail": "in F2",
            }
        ],
    },
}


def small_world(**changes: Any) -> World:
    """The small world, with top-level keys replaced."""
    return parse_world({**SMALL_WORLD, **changes})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(clock: ManualClock) -> SimApp:
    return create_app(small_world(), clock=clock)


@pytest.fixture
async def client(app: SimApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


async def start(client: httpx.AsyncClient, details: dict[str, Any], **body: Any) -> int:
    """Start a run and return its runCounter (asserting it was accepted)."""
    response = await client.post(
        "/scheduler/startRun", json={"runDetails": details, **body}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    counter: int = response.json()["runCounter"]
    return counter


async def status(client: httpx.AsyncClient, run: int) -> str:
    response = await client.get("/scheduler/runStatus", params={"runCounter": run}, headers=AUTH)
    assert response.status_code == 200, response.text
    value: str = response.json()["runStatus"]
    return value


async def results(client: httpx.AsyncClient, run: int) -> dict[str, dict[str, Any]]:
    """The run's results by node name."""
    response = await client.get(f"/api/v1/runs/{run}/results", headers=AUTH)
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["data"]}


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def node_window(result: dict[str, Any]) -> tuple[float, float]:
    """When a finished node ran: its first query's start to its last query's end."""
    queries = result["queryResults"]
    return seconds(queries[0]["startTime"]), seconds(queries[-1]["endTime"])
