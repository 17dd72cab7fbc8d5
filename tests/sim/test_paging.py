"""List endpoints page with limit, orderBy, orderByDirection and an exclusive cursor."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.coalesce.models import EnvironmentNode, Page, RunSummary, dependency_edges
from runner.sim import ManualClock
from tests.sim.conftest import AUTH, start


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[list[Any]]:
    """Every page of a list, following ``next``; the ids of each page."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        query = dict(params, **({"startingFrom": cursor} if cursor is not None else {}))
        response = await client.get(path, params=query, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["id"] for item in body["data"]])
        cursor = body.get("next")
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not end"


@pytest.fixture
async def seven_runs(client: httpx.AsyncClient, clock: ManualClock) -> list[int]:
    runs = []
    for index in range(7):
        runs.append(await start(client, {"environmentID": "1" if index % 2 else "3", "jobID": "1"}))
        clock.advance(0.5)
    return runs


async def test_runs_page_newest_first_by_default(
    client: httpx.AsyncClient, seven_runs: list[int]
) -> None:
    first = (await client.get("/api/v1/runs", params={"limit": 3}, headers=AUTH)).json()
    page = Page[RunSummary].model_validate(first)
    assert [run.id for run in page.data] == [7, 6, 5]
    assert (page.limit, page.orderBy, page.orderByDirection, page.total, page.next) == (
        3,
        "id",
        "desc",
        7,
        "5",
    )
    pages = await all_pages(client, "/api/v1/runs", limit=3, orderBy="id")
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]


@pytest.mark.parametrize("order_by", ["id", "runStartTime", "runEndTime"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_paging_visits_every_run_once_in_every_order(
    client: httpx.AsyncClient,
    clock: ManualClock,
    seven_runs: list[int],
    order_by: str,
    direction: str,
) -> None:
    clock.advance(2)  # some runs have ended, some have not
    pages = await all_pages(
        client, "/api/v1/runs", limit=2, orderBy=order_by, orderByDirection=direction
    )
    ids = [run for page in pages for run in page]
    assert sorted(ids) == seven_runs
    if order_by != "runEndTime":
        assert ids == sorted(ids, reverse=direction == "desc")


async def test_runs_filter_by_environment_status_and_type(
    client: httpx.AsyncClient, clock: ManualClock, seven_runs: list[int]
) -> None:
    async def ids(**params: str) -> list[int]:
        body = (await client.get("/api/v1/runs", params=params, headers=AUTH)).json()
        return [run["id"] for run in body["data"]]

    assert await ids(environmentID="1") == [6, 4, 2]
    assert await ids(runType="deploy") == []
    assert await ids(runType="refresh") == [7, 6, 5, 4, 3, 2, 1]
    # At t=3.7: environment 1 (no limit) ran 2 at 1.5-3.5, runs 4 and 6 since 2.5 and 3.5;
    # environment 3 (one run at a time) ran 1 at 1-3, runs 3 since 3, queues 5 and 7.
    clock.advance(0.2)
    assert await ids(runStatus="completed") == [2, 1]
    assert await ids(runStatus="running") == [6, 4, 3]
    assert await ids(runStatus="waitingToRun", environmentID="3") == [7, 5]


async def test_detail_lists_full_run_info(client: httpx.AsyncClient, seven_runs: list[int]) -> None:
    body = (
        await client.get("/api/v1/runs", params={"detail": "true", "limit": 1}, headers=AUTH)
    ).json()
    [run] = body["data"]
    assert run["runDetails"]["jobID"] == 1 and run["runDetails"]["jobName"] == "staging"


@pytest.mark.parametrize(
    ("params", "error_start"),
    [
        ({"limit": "1001"}, "Invalid limit"),
        ({"limit": "-1"}, "Invalid limit"),
        ({"orderBy": "name"}, "Invalid orderBy"),
        ({"orderByDirection": "up"}, "Invalid orderByDirection"),
        ({"startingFrom": "3"}, "startingFrom requires orderBy"),
        ({"startingFrom": "three", "orderBy": "id"}, "Invalid startingFrom"),
        ({"startingFrom": "yesterday", "orderBy": "runStartTime"}, "Invalid startingFrom"),
        ({"detail": "yes"}, "Invalid detail"),
    ],
)
async def test_bad_paging_parameters_are_400(
    client: httpx.AsyncClient, params: dict[str, str], error_start: str
) -> None:
    response = await client.get("/api/v1/runs", params=params, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["errorString"].startswith(error_start)


async def test_limit_zero_returns_no_runs_but_the_total(
    client: httpx.AsyncClient, seven_runs: list[int]
) -> None:
    body = (await client.get("/api/v1/runs", params={"limit": 0}, headers=AUTH)).json()
    assert (body["data"], body["total"], "next" in body) == ([], 7, False)


async def test_environments_page_by_id(client: httpx.AsyncClient) -> None:
    pages = await all_pages(client, "/api/v1/environments", limit=2, orderBy="id")
    assert pages == [["1", "2"], ["3"]]
    names = (
        await client.get("/api/v1/environments", params={"orderBy": "name"}, headers=AUTH)
    ).json()
    assert [env["name"] for env in names["data"]] == ["broken", "dev", "queued"]


async def test_nodes_page_and_detail_gives_dependencies_by_location_and_name(
    client: httpx.AsyncClient,
) -> None:
    pages = await all_pages(
        client, "/api/v1/environments/1/nodes", limit=4, orderBy="id", detail="true"
    )
    assert [len(page) for page in pages] == [4, 4, 3]
    nodes = []
    for params in ({"detail": "true", "limit": "100"}, {"limit": "100"}):
        body = (
            await client.get("/api/v1/environments/1/nodes", params=params, headers=AUTH)
        ).json()
        nodes.append([EnvironmentNode.model_validate(item) for item in body["data"]])
    detailed, plain = nodes
    edges = {(e.upstream.name, e.downstream.name) for e in dependency_edges(detailed)}
    assert ("T1", "F1") in edges and ("T2", "F1") in edges and ("M2", "M3") in edges
    assert len(edges) == 9
    assert dependency_edges(plain) == []
    f1 = next(node for node in detailed if node.name == "F1")
    assert (f1.locationName, f1.nodeType, f1.database, f1.schema_) == (
        "FACT",
        "Fact",
        "DEV_DB",
        "FACT",
    )
    assert len({node.id for node in detailed}) == 11
