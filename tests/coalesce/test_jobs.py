"""An environment's jobs: listed by Coalesce page by page; on an older Coalesce that
answers 404 to the list, the jobs the specs number are read one by one; a job's name is
resolved to exactly one job, or to a problem that says what to write instead."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from runner.coalesce import ClientPool, EnvironmentJobs, read_jobs
from runner.coalesce.models import DeployedJob
from runner.secrets import Secret

URL = "https://app.coalescesoftware.io"


def _read(handler: Any, job_ids: tuple[str, ...] = ()) -> EnvironmentJobs:
    async def main() -> EnvironmentJobs:
        async with ClientPool(transport=httpx.MockTransport(handler)) as pool:
            client = pool.client(URL, Secret("tok-jobs-test"), token_source="a test")
            return await read_jobs(client, "12", job_ids)

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


def test_a_coalesce_that_does_not_list_jobs_is_asked_for_each_numbered_job() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/api/v1/environments/12/jobs/7":
            return httpx.Response(200, json={"id": 7, "name": "Nightly marts"})
        return httpx.Response(404, json={"error": {"errorString": "Not Found"}})

    jobs = _read(handler, ("7", "9", "7"))

    assert sorted(asked) == [
        "/api/v1/environments/12/jobs",
        "/api/v1/environments/12/jobs/7",
        "/api/v1/environments/12/jobs/9",
    ]
    assert not jobs.listed
    assert jobs.by_id("7") is not None and jobs.by_id("9") is None
    # A name cannot be resolved without the list, even the name of a job read by ID.
    problem = jobs.resolve("Nightly marts").problem or ""
    assert "does not list the jobs of environment 12 (it answered 404)" in problem
    assert "use jobID" in problem


def _jobs(*pairs: tuple[str, str]) -> EnvironmentJobs:
    return EnvironmentJobs("12", tuple(DeployedJob(id=i, name=n) for i, n in pairs))


def test_a_name_resolves_to_its_one_job() -> None:
    resolution = _jobs(("7", "Nightly marts"), ("8", "Hourly")).resolve("Nightly marts")
    assert resolution.job is not None and resolution.job.id == "7"
    assert resolution.problem is None


def test_a_misspelt_name_gets_the_closest_name() -> None:
    resolution = _jobs(("7", "Nightly marts"), ("8", "Hourly")).resolve("Nightly mart")
    assert resolution.job is None
    assert resolution.problem == (
        "environment 12 has no job called 'Nightly mart' (its jobs: 7 'Nightly marts', "
        "8 'Hourly'); did you mean 'Nightly marts'?"
    )


def test_a_name_two_jobs_share_is_refused_with_their_ids() -> None:
    resolution = _jobs(("12", "Daily"), ("3", "Daily"), ("4", "Other")).resolve("Daily")
    assert resolution.job is None
    assert resolution.problem == (
        "2 jobs of environment 12 are called 'Daily' (IDs 3, 12): use jobID to say which one"
    )


def test_names_are_matched_exactly() -> None:
    jobs = _jobs(("7", "Nightly marts"))
    for near in ("nightly marts", "Nightly marts ", " Nightly marts"):
        assert jobs.resolve(near).job is None, near


def test_ids_from_coalesce_reach_no_message_raw() -> None:
    """Coalesce's IDs are its text: one that is not digits is quoted with its control
    characters escaped, wherever a message names it."""
    hostile = ("6\x1b[2J\x1b[31mPWNED", "9\n::error::x")
    jobs = _jobs((hostile[0], "marts"), (hostile[1], "marts"), ("\u202e7", "other"))
    texts = [jobs.resolve("marts").problem or "", jobs.resolve("mart").problem or ""]
    for text in texts:
        assert "\x1b" not in text and "\n" not in text and "\u202e" not in text, text
    assert r"'6\x1b[2J\x1b[31mPWNED'" in texts[0]
    assert r"'\u202e7' 'other'" in texts[1]
