"""``runner import`` against a scripted Coalesce (httpx.MockTransport): which runs the
spec gets, where each came from, and that a plan of it asks what the history shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.coalesce import CoalesceAPIError
from runner.importing import spec_document

from ._fake import FakeCoalesce, planned_requests, run, written

JOBS = [
    {"id": "7", "name": "Nightly marts", "includeSelector": "{ location: MART }+"},
    {"id": "3", "name": "Staging load", "includeSelector": "{ location: STG }"},
]


def history_body(item: dict[str, Any]) -> dict[str, Any]:
    """The startRun body a history item shows, written out independently of runner."""
    details = item["runDetails"]
    body: dict[str, Any] = {"environmentID": details["environmentID"]}
    if details.get("jobID") is not None:
        body["jobID"] = str(details["jobID"])
    for key in ("includeNodesSelector", "excludeNodesSelector", "parallelism"):
        if details.get(key) is not None:
            body[key] = details[key]
    if details.get("forceIgnoreEnvironmentStatus"):
        body["forceIgnoreEnvironmentStatus"] = body["forceIgnoreWorkspaceStatus"] = True
    request: dict[str, Any] = {"runDetails": body}
    if item["runTimeParameters"]:
        request["parameters"] = item["runTimeParameters"]
    return request


async def test_one_run_per_job_and_per_distinct_ad_hoc_request(tmp_path: Path) -> None:
    history = [
        run(10, days_ago=1, jobID=7, parallelism=8, parameters={"region": "emea"}),
        run(9, days_ago=2, jobID=7, parallelism=4),  # older settings of the same job
        run(8, days_ago=3, includeNodesSelector="{ location: DIM }", parallelism=16),
        run(7, days_ago=4, includeNodesSelector="{ location: DIM }", parallelism=16),
        run(6, days_ago=5, includeNodesSelector="{ location: DIM }", parallelism=2),
        run(5, days_ago=6, parallelism=16, forceIgnoreEnvironmentStatus=True),
    ]
    fake = FakeCoalesce(runs=history, jobs=JOBS)
    imported = await fake.imported()

    assert [r.name for r in imported.runs] == [
        "staging-load",
        "nightly-marts",
        "adhoc-location-dim",
        "adhoc-location-dim-2",
        "adhoc-all-nodes",
    ]
    sources = {r.name: r.source for r in imported.runs}
    assert sources["staging-load"].runs == ()  # not run lately: its jobID alone
    assert sources["nightly-marts"].runs == (10,)
    assert sources["nightly-marts"].other_settings == 1
    assert sources["adhoc-location-dim"].runs == (8, 7)
    assert sources["adhoc-location-dim-2"].runs == (6,)

    planned = await planned_requests(written(imported), tmp_path)
    by_id = {item["id"]: item for item in history}
    for name, source in sources.items():
        for run_id in source.runs:
            assert planned[name] == history_body(by_id[run_id]), (name, run_id)
    assert planned["staging-load"] == {"runDetails": {"environmentID": "12", "jobID": "3"}}


async def test_a_whole_environment_run_says_all_nodes(tmp_path: Path) -> None:
    imported = await FakeCoalesce(runs=[run(4)], jobs=[]).imported()
    text = written(imported)
    assert "allNodes: true" in text
    assert await planned_requests(text, tmp_path) == {
        "adhoc-all-nodes": {"runDetails": {"environmentID": "12"}}
    }


async def test_an_ad_hoc_request_equal_to_a_job_run_is_not_repeated(tmp_path: Path) -> None:
    history = [
        run(3, days_ago=1, includeNodesSelector=" { location: STG } ", parallelism=8),
        run(2, days_ago=2, jobID=3, parallelism=8),
        run(1, days_ago=3, includeNodesSelector="{ location: STG }", parallelism=9),
    ]
    imported = await FakeCoalesce(runs=history, jobs=JOBS).imported()
    names = [r.name for r in imported.runs]
    assert names == ["staging-load", "nightly-marts", "adhoc-location-stg"]
    staging = imported.runs[0]
    assert staging.source.runs == (2,) and staging.source.ad_hoc_runs == (3,)
    assert imported.runs[2].source.runs == (1,)  # other settings: a run of its own
    assert "also fired ad hoc with the same request as run(s) 3" in written(imported)


async def test_an_ad_hoc_request_selecting_a_job_not_run_lately_says_so() -> None:
    history = [run(1, includeNodesSelector="{ location: MART }+")]
    imported = await FakeCoalesce(runs=history, jobs=JOBS).imported()
    assert [r.name for r in imported.runs] == [
        "staging-load",
        "nightly-marts",
        "adhoc-location-mart",
    ]
    assert 'selects what job 7 "Nightly marts" selects' in written(imported)


async def test_runs_before_the_window_and_reruns_are_not_read(tmp_path: Path) -> None:
    history = [
        run(5, days_ago=1, includeNodesSelector="{ location: A }"),
        {**run(4, days_ago=2, includeNodesSelector="{ location: B }"), "reRunID": 3},
        run(3, days_ago=20, includeNodesSelector="{ location: C }"),
        run(2, days_ago=30, includeNodesSelector="{ location: D }"),
    ]
    fake = FakeCoalesce(runs=history, jobs=[], page_size=1)
    imported = await fake.imported()
    assert [r.name for r in imported.runs] == ["adhoc-location-a"]
    # Newest first, and no page past the first run older than the window.
    assert len([r for r in fake.requests if r.url.path == "/api/v1/runs"]) == 3
    wider = await FakeCoalesce(runs=history, jobs=[]).imported(since=_days(25))
    assert [r.name for r in wider.runs] == ["adhoc-location-a", "adhoc-location-c"]


def _days(count: int) -> Any:
    import datetime as dt

    return dt.timedelta(days=count)


async def test_a_coalesce_without_a_jobs_list_gives_the_jobs_of_the_history(
    tmp_path: Path,
) -> None:
    history = [run(2, jobID="5", jobName="Hourly", parallelism=3)]
    imported = await FakeCoalesce(runs=history, jobs=None).imported()
    assert [r.name for r in imported.runs] == ["hourly"]
    assert "does not list jobs" in written(imported)
    assert await planned_requests(written(imported), tmp_path) == {
        "hourly": history_body(history[0])
    }


async def test_runs_that_cannot_be_spec_runs_are_left_out_and_said_why() -> None:
    history = [
        run(9, jobID=99),  # a job no longer deployed
        run(8, includeNodesSelector="{ location: "),  # not a selector
        run(7, parallelism=5000),
        run(6, parameters={"nested": {"a": "b"}}),
        run(5, includeNodesSelector="{ name: \ud800 }"),
        run(4, includeNodesSelector="{ location: OK }"),
    ]
    imported = await FakeCoalesce(runs=history, jobs=[]).imported()
    assert [r.name for r in imported.runs] == ["adhoc-location-ok"]
    reasons = {item.run_id: item.reason for item in imported.left_out}
    assert reasons == {
        9: "job 99 is not deployed in the environment now",
        8: "its include selector is not one runner can read",
        7: "its parallelism is outside 1 to 1024",
        6: "a parameter's value is not text, a number or a boolean",
        5: "its include selector cannot be written in a spec: it holds a character that "
        "is not valid Unicode text",
    }
    document = spec_document(imported, path=None)
    assert [item["run"] for item in document["leftOut"]] == [9, 8, 7, 6, 5]
    assert "Left out: run(s) 9, 8, 7, 6, 5" in written(imported)


async def test_numbers_and_booleans_in_parameters_become_text(tmp_path: Path) -> None:
    history = [run(1, includeNodesSelector="{ * }", parameters={"n": 5, "b": True, "f": 1.5})]
    imported = await FakeCoalesce(runs=history, jobs=[]).imported()
    planned = await planned_requests(written(imported), tmp_path)
    assert planned["adhoc"]["parameters"] == {"n": "5", "b": "true", "f": "1.5"}


async def test_an_unknown_environment_is_coalesce_s_error() -> None:
    fake = FakeCoalesce()
    async with fake.client() as client:
        from runner.importing import aimport_environment

        with pytest.raises(CoalesceAPIError):
            await aimport_environment(client, "13")


async def test_credentials_follow_the_latest_run_and_say_what_was_assumed() -> None:
    keypair = {"snowflakeAuthType": "KeyPair", "username": "KEYUSER", "role": "R"}
    history = [
        run(3, days_ago=1, credentials=keypair),
        run(2, days_ago=2, credentials={"snowflakeAuthType": "Basic", "snowflakeUsername": "B"}),
        {**run(1), "runStartTime": "not a time"},
    ]
    imported = await FakeCoalesce(runs=history, jobs=[]).imported()
    assert imported.history_runs == 2
    assert imported.credentials.as_data() == {
        "snowflakeAuthType": "KeyPair",
        "snowflakeUsername": "KEYUSER",
        "snowflakeKeyPairKey": "{{ secret('SNOWFLAKE_PRIVATE_KEY') }}",
        "snowflakeRole": "R",
    }
    assert "1 earlier run(s) used another auth type" in imported.credentials.notes[0]
    assert "snowflakeKeyPairPass" in written(imported)

    unknown = await FakeCoalesce(
        runs=[run(4, credentials={"snowflakeAuthType": "Cloud"})], jobs=[]
    ).imported()
    assert unknown.credentials.auth_type == "Basic"
    assert "Basic (user and password) is assumed" in unknown.credentials.notes[0]
    assert "--var snowflake_user=NAME" in unknown.credentials.notes[1]
