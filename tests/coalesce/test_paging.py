"""Cursor paging: follow ``next``, send ``orderBy`` with ``startingFrom``, stop on a loop."""

from __future__ import annotations

from typing import Any

import httpx

from runner.coalesce import CoalesceClient, dependency_edges

from .fakes import URL, FakeClock, token


class PagedServer:
    """Serves pages keyed by the ``startingFrom`` it receives."""

    def __init__(self, pages: dict[str | None, dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.pages[request.url.params.get("startingFrom")])

    def client(self) -> CoalesceClient:
        return CoalesceClient(
            URL,
            token(),
            transport=httpx.MockTransport(self.handler),
            clock=FakeClock().clock(),
            environ={},
        )


def runs(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "runStatus": "completed", "environmentID": "4"} for i in ids]


async def test_iter_runs_follows_next_until_there_is_none() -> None:
    server = PagedServer(
        {
            None: {"data": runs(30, 29), "next": 29, "limit": 2, "orderBy": "id"},
            "29": {"data": runs(28, 27), "next": "27", "limit": 2},
            "27": {"data": runs(26), "limit": 2},
        }
    )
    async with server.client() as client:
        ids = [run.id async for run in client.iter_runs(environment_id="4", run_status="completed")]
    assert ids == [30, 29, 28, 27, 26]
    first, second, _ = (r.url.params for r in server.requests)
    assert first["environmentID"] == "4" and first["runStatus"] == "completed"
    assert "startingFrom" not in first
    assert second["startingFrom"] == "29" and second["orderBy"] == "id"
    assert second["environmentID"] == "4"


async def test_paging_stops_on_a_repeated_cursor() -> None:
    server = PagedServer(
        {
            None: {"data": runs(3), "next": "2"},
            "2": {"data": runs(2), "next": "2"},
        }
    )
    async with server.client() as client:
        ids = [run.id async for run in client.iter_runs()]
    assert ids == [3, 2]
    assert len(server.requests) == 2


async def test_stopping_iteration_early_stops_fetching() -> None:
    server = PagedServer({None: {"data": runs(3, 2), "next": "2"}, "2": {"data": runs(1)}})
    async with server.client() as client:
        async for run in client.iter_runs():
            if run.id == 3:
                break
    assert len(server.requests) == 1


async def test_one_page_call_passes_cursor_with_order_by() -> None:
    server = PagedServer({"10": {"data": runs(9), "next": "9", "orderBy": "id"}})
    async with server.client() as client:
        page = await client.list_runs(environment_id="4", starting_from=10, limit=1)
    assert page.next == "9"
    params = server.requests[0].url.params
    assert params["startingFrom"] == "10" and params["orderBy"] == "id" and params["limit"] == "1"


async def test_a_chosen_order_is_kept_across_pages() -> None:
    server = PagedServer(
        {
            None: {"data": runs(1), "next": "2026-01-01T00:00:00Z"},
            "2026-01-01T00:00:00Z": {"data": runs(2)},
        }
    )
    async with server.client() as client:
        ids = [
            r.id async for r in client.iter_runs(order_by="runStartTime", order_by_direction="asc")
        ]
    assert ids == [1, 2]
    params = server.requests[1].url.params
    assert params["orderBy"] == "runStartTime" and params["orderByDirection"] == "asc"


async def test_list_nodes_reads_every_page_and_yields_dependencies() -> None:
    node = {"id": "2", "name": "STG", "locationName": "STAGING", "unknown": True}
    server = PagedServer(
        {
            None: {"data": [{"id": "1", "name": "SRC", "locationName": "RAW"}], "next": "1"},
            "1": {
                "data": [
                    {
                        **node,
                        "metadata": {
                            "sourceMapping": [
                                {"dependencies": [{"locationName": "RAW", "nodeName": "SRC"}]}
                            ]
                        },
                    }
                ]
            },
        }
    )
    async with server.client() as client:
        nodes = await client.list_nodes("4")
    assert [n.name for n in nodes] == ["SRC", "STG"]
    assert server.requests[0].url.path == "/api/v1/environments/4/nodes"
    assert server.requests[0].url.params["detail"] == "true"
    assert [(e.upstream.name, e.downstream.name) for e in dependency_edges(nodes)] == [
        ("SRC", "STG")
    ]


async def test_list_environments_and_run_results() -> None:
    server = PagedServer(
        {
            None: {
                "data": [{"id": 4, "name": "prod", "status": "Failed Deploy", "tagColors": {}}],
            }
        }
    )
    async with server.client() as client:
        envs = await client.list_environments()
    assert envs[0].id == "4" and envs[0].status == "Failed Deploy"
    assert server.requests[0].url.params["detail"] == "false"


async def test_iter_run_details_reads_every_page_with_details() -> None:
    def detailed(run_id: int, job: int | None) -> dict[str, Any]:
        details = {"environmentID": "4", "parallelism": 8}
        if job is not None:
            details["jobID"] = job  # the response types it as an integer
        return {
            "id": run_id,
            "runStatus": "completed",
            "runDetails": details,
            "runTimeParameters": {"region": "emea"},
            "userCredentials": {"snowflakeAuthType": "Basic", "snowflakeUsername": "SVC"},
        }

    server = PagedServer(
        {
            None: {"data": [detailed(9, 3)], "next": "9", "orderBy": "runStartTime"},
            "9": {"data": [detailed(8, None)]},
        }
    )
    async with server.client() as client:
        runs_seen = [
            run
            async for run in client.iter_run_details(
                environment_id="4",
                run_type="refresh",
                order_by="runStartTime",
                order_by_direction="desc",
            )
        ]
    assert [run.id for run in runs_seen] == [9, 8]
    first = runs_seen[0]
    assert first.runDetails is not None and first.runDetails.jobID == "3"
    assert first.runTimeParameters == {"region": "emea"}
    assert first.userCredentials == {"snowflakeAuthType": "Basic", "snowflakeUsername": "SVC"}
    params = server.requests[0].url.params
    assert params["detail"] == "true" and params["runType"] == "refresh"
    assert params["orderBy"] == "runStartTime" and params["orderByDirection"] == "desc"
    assert server.requests[1].url.params["orderBy"] == "runStartTime"
