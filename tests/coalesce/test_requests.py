"""The typed requests that create runs: the API's shape, frozen, secrets kept wrapped."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runner.coalesce.requests import FORCE_KEYS, RerunRequest, StartRunRequest
from runner.secrets import REDACTED, Secret, reveal_all

CANARY = "CANARY-request-pw-91c2"


def _request() -> StartRunRequest:
    return StartRunRequest(
        "12",
        job_id="7",
        include_nodes_selector="{ location: STG }+",
        parallelism=4,
        force_ignore_environment_status=True,
        credentials={
            "snowflakeAuthType": "Basic",
            "snowflakeUsername": "etl",
            "snowflakePassword": Secret(CANARY),
        },
        parameters={"load_date": "2026-01-05"},
    )


def test_the_body_is_the_api_shape_with_the_force_flag_under_both_names() -> None:
    body = _request().body()
    assert reveal_all(body) == {
        "runDetails": {
            "environmentID": "12",
            "jobID": "7",
            "includeNodesSelector": "{ location: STG }+",
            "parallelism": 4,
            **dict.fromkeys(FORCE_KEYS, True),
        },
        "userCredentials": {
            "snowflakeAuthType": "Basic",
            "snowflakeUsername": "etl",
            "snowflakePassword": CANARY,
        },
        "parameters": {"load_date": "2026-01-05"},
    }


def test_fields_left_unset_are_not_sent() -> None:
    assert StartRunRequest("3").body() == {"runDetails": {"environmentID": "3"}}


def test_the_redacted_form_shows_no_secret_and_the_body_keeps_it_wrapped() -> None:
    request = _request()
    assert CANARY not in json.dumps(request.redacted())
    assert request.redacted()["userCredentials"]["snowflakePassword"] == REDACTED
    assert isinstance(request.body()["userCredentials"]["snowflakePassword"], Secret)
    assert CANARY not in repr(request) and CANARY not in str(request)


def test_a_request_cannot_be_changed_after_it_was_built() -> None:
    credentials = {"snowflakeAuthType": "OAuth"}
    request = StartRunRequest("3", credentials=credentials, parameters={"a": "1"})
    credentials["snowflakeRole"] = "ADMIN"  # the caller's dict is copied, not kept
    assert request.body()["userCredentials"] == {"snowflakeAuthType": "OAuth"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.job_id = "9"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.parameters["a"] = "2"  # type: ignore[index]


def test_a_rerun_sends_the_run_id_as_text_with_the_runs_flag_credentials_and_parameters() -> None:
    rerun = RerunRequest.of(41, _request())
    assert rerun.path == "/scheduler/rerun" and rerun.forced
    body = reveal_all(rerun.body())
    assert body["runDetails"] == {"runID": "41", **dict.fromkeys(FORCE_KEYS, True)}
    assert body["userCredentials"]["snowflakePassword"] == CANARY
    assert body["parameters"] == {"load_date": "2026-01-05"}
    assert [s.reveal() for s in rerun.secrets()] == [CANARY]
