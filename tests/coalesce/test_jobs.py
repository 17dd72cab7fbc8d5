"""An environment's jobs: listed by Coalesce page by page, and unknown (not an error)
on an older Coalesce that answers 404 to the list."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from runner.coalesce import ClientPool, read_jobs
from runner.secrets import Secret

URL = "https://app.coalescesoftware.io"


def _read(handler: Any) -> Any:
    async def main() -> Any:
        async with ClientPool(transport=httpx.MockTransport(handler)) as pool:
            client = pool.client(URL, Secret("tok-jobs-test"), token_source="a test")
            return await read_jobs(client, "12")

    return asyncio.run(main())


def test_the_jobs_are_read_page_by_page() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.url.path == "/api/v1/environments/12/jobs"
        if "startingFrom" not in request.url.params:
            page = {"data": [{"id": "7", "name": "Nightly marts"}], "next": "7", "orderBy": "id"}
            return httpx.Response(200, json=page)
        return httpx.Response(200, json={"data": [{"id": 8, "name": "Hourly"}]})

    jobs = _read(handler)

    assert [job.id for job in jobs] == ["7", "8"] and len(seen) == 2
    assert jobs.by_id("8") is not None and jobs.by_id("9") is None
    assert [job.id for job in jobs.named("Nightly marts")] == ["7"]
    assert jobs.listing() == "7 'Nightly marts', 8 'Hourly'"


def test_a_coalesce_that_does_not_list_jobs_leaves_them_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"errorString": "Not Found"}}
        return httpx.Response(404, json=error)

    assert _read(handler) is None
