"""Bad requests get Coalesce's status and error body, with a message a person can act on."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.sim.conftest import AUTH, start

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "BKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----"
)
ENCRYPTED_PEM = PEM.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
CANARY_PASSWORD = "CANARY-PASSWORD-7f3a"
CANARY_KEY_LINE = "CANARYKEYLINE0123456789abcdefghij"


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["errorString"], str) and error["errorString"]
    return error


async def post_start(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] = AUTH
) -> httpx.Response:
    return await client.post("/scheduler/startRun", json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "test-token-1"},
        {"Authorization": "Bearer "},
    ],
    ids=["no-token", "wrong-token", "no-bearer-scheme", "empty-token"],
)
async def test_a_missing_or_wrong_token_is_401_on_every_api_endpoint(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    calls = [
        client.post(
            "/scheduler/startRun", json={"runDetails": {"environmentID": "1"}}, headers=headers
        ),
        client.get("/scheduler/runStatus", params={"runCounter": 1}, headers=headers),
        client.get("/api/v1/runs", headers=headers),
        client.get("/api/v1/environments/1/nodes", headers=headers),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401
        assert error_of(response)["errorString"] == (
            "401: Unable to authenticate, please ensure your token is valid."
        )
    runs = (await client.get("/_sim/runs")).json()["data"]
    assert runs == []


async def test_every_listed_token_is_accepted(client: httpx.AsyncClient) -> None:
    response = await post_start(
        client, {"runDetails": {"environmentID": "1"}}, {"Authorization": "Bearer test-token-2"}
    )
    assert response.status_code == 200


BASIC = {
    "snowflakeAuthType": "Basic",
    "snowflakeUsername": "etl",
    "snowflakePassword": CANARY_PASSWORD,
}


@pytest.mark.parametrize(
    ("body", "error_start"),
    [
        ({}, "Missing required field: runDetails"),
        ({"runDetails": "1"}, "Invalid runDetails: expected a JSON object"),
        ({"runDetails": {}}, "Missing required field: runDetails.environmentID"),
        ({"runDetails": {"environmentID": "dev"}}, "Invalid runDetails.environmentID"),
        ({"runDetails": {"environmentID": True}}, "Invalid runDetails.environmentID"),
        ({"runDetails": {"environmentID": "99"}}, "Environment 99 not found"),
        (
            {"runDetails": {"environmentID": "1", "jobID": "42"}},
            "Job 42 not found in environment 1",
        ),
        (
            {"runDetails": {"environmentID": "1", "includeNodesSelector": "{ location: STG"}},
            "Invalid includeNodesSelector:",
        ),
        (
            {"runDetails": {"environmentID": "1", "excludeNodesSelector": "{ colour: red }"}},
            "Invalid excludeNodesSelector:",
        ),
        (
            {"runDetails": {"environmentID": "1", "parallelism": 0}},
            "Invalid runDetails.parallelism",
        ),
        (
            {"runDetails": {"environmentID": "1", "forceIgnoreWorkspaceStatus": "yes"}},
            "Invalid runDetails.forceIgnoreWorkspaceStatus: expected true or false",
        ),
        (
            {
                "runDetails": {
                    "environmentID": "1",
                    "forceIgnoreWorkspaceStatus": True,
                    "forceIgnoreEnvironmentStatus": False,
                }
            },
            "Conflicting force flags in runDetails",
        ),
        (
            {"runDetails": {"environmentID": "1"}, "userCredentials": {"snowflakeUsername": "etl"}},
            "Missing userCredentials.snowflakePassword: required when snowflakeAuthType is Basic",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {**BASIC, "snowflakeUsername": ""},
            },
            "Missing userCredentials.snowflakeUsername",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {"snowflakeAuthType": "keypair"},
            },
            "Invalid userCredentials.snowflakeAuthType",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {
                    "snowflakeAuthType": "KeyPair",
                    "snowflakeUsername": "etl",
                    "snowflakeKeyPairKey": CANARY_KEY_LINE,
                },
            },
            "Unable to parse private key: snowflakeKeyPairKey is not a PEM private key",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {
                    "snowflakeAuthType": "KeyPair",
                    "snowflakeUsername": "etl",
                    "snowflakeKeyPairKey": PEM.replace("\n", "\r\n"),
                },
            },
            "Unable to parse private key: snowflakeKeyPairKey contains carriage returns",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {
                    "snowflakeAuthType": "KeyPair",
                    "snowflakeUsername": "etl",
                    "snowflakeKeyPairKey": ENCRYPTED_PEM,
                },
            },
            "Unable to parse private key: the key is encrypted and no passphrase was given",
        ),
        (
            {
                "runDetails": {"environmentID": "1"},
                "userCredentials": {"snowflakeAuthType": "KeyPair"},
            },
            "Missing userCredentials.snowflakeUsername: required when snowflakeAuthType is KeyPair",
        ),
        ({"runDetails": {"environmentID": "1"}, "parameters": ["a"]}, "Invalid parameters"),
        (
            {"runDetails": {"environmentID": "1"}, "parameters": {"day": 5}},
            "Invalid parameters.day: expected a string value",
        ),
        (
            {"runDetails": {"environmentID": "2"}},
            "Environment 2 (broken) is in status Failed Deploy",
        ),
        (
            {"runDetails": {"environmentID": "2", "forceIgnoreEnvironmentStatus": False}},
            "Environment 2 (broken) is in status Failed Deploy",
        ),
    ],
    ids=lambda value: None if isinstance(value, dict) else str(value)[:40],
)
async def test_bad_start_requests_are_400_with_an_error_body(
    client: httpx.AsyncClient, body: dict[str, Any], error_start: str
) -> None:
    response = await post_start(client, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["errorString"].startswith(error_start)
    assert error.get("errorDetail")  # every 400 says how to fix it
    assert CANARY_PASSWORD not in response.text and CANARY_KEY_LINE not in response.text
    assert (await client.get("/_sim/counters")).json()["runsCreated"] == 0


async def test_a_malformed_selector_error_carries_the_parser_message_and_column(
    client: httpx.AsyncClient,
) -> None:
    response = await post_start(
        client, {"runDetails": {"environmentID": "1", "includeNodesSelector": "{ location: STG"}}
    )
    error = error_of(response)
    match = re.search(r"\(column (\d+)\)$", error["errorString"])
    assert match is not None, error
    text, caret = error["errorDetail"].split("\n")
    assert text == "{ location: STG"
    assert caret == " " * (int(match.group(1)) - 1) + "^"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"runDetails"'])
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        "/scheduler/startRun",
        content=raw,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_of(response)["errorString"].startswith("Invalid request body")


@pytest.mark.parametrize(
    "details",
    [
        {"environmentID": "2", "forceIgnoreWorkspaceStatus": True},
        {"environmentID": "2", "forceIgnoreEnvironmentStatus": True},
        {
            "environmentID": 2,
            "forceIgnoreWorkspaceStatus": True,
            "forceIgnoreEnvironmentStatus": True,
        },
    ],
)
async def test_the_force_flag_under_either_name_refreshes_a_failed_deploy_environment(
    client: httpx.AsyncClient, details: dict[str, Any]
) -> None:
    assert await start(client, details) == 1


@pytest.mark.parametrize(
    "credentials",
    [
        BASIC,
        {"snowflakeAuthType": "OAuth"},
        {"snowflakeAuthType": "KeyPair", "snowflakeUsername": "etl", "snowflakeKeyPairKey": PEM},
        {
            "snowflakeAuthType": "KeyPair",
            "snowflakeUsername": "etl",
            "snowflakeKeyPairKey": ENCRYPTED_PEM + "\n",
            "snowflakeKeyPairPass": "pass",
        },
    ],
    ids=["basic", "oauth", "keypair", "encrypted-keypair"],
)
async def test_complete_credentials_are_accepted_and_never_stored(
    client: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    run = await start(client, {"environmentID": "1"}, userCredentials=credentials)
    info = (await client.get(f"/api/v1/runs/{run}", headers=AUTH)).json()
    assert info["userCredentials"]["snowflakeAuthType"] == credentials["snowflakeAuthType"]
    stored = (await client.get("/_sim/runs")).text + (await client.get("/_sim/requests")).text
    for key in ("snowflakePassword", "snowflakeKeyPairKey", "snowflakeKeyPairPass"):
        assert key not in info["userCredentials"]
        if key in credentials:
            assert credentials[key] not in stored + str(info)


async def test_ids_may_be_integers_as_coalesce_accepts(client: httpx.AsyncClient) -> None:
    run = await start(client, {"environmentID": 1, "jobID": 1})
    info = (await client.get(f"/api/v1/runs/{run}", headers=AUTH)).json()
    assert info["runDetails"]["environmentID"] == "1"
    assert info["runDetails"]["jobID"] == 1


async def test_cancel_and_rerun_validate_their_bodies(client: httpx.AsyncClient) -> None:
    cases = [
        ("/scheduler/cancelRun", {}, "Missing required field: runID"),
        ("/scheduler/cancelRun", {"runID": 5}, "Run 5 not found"),
        ("/scheduler/rerun", {}, "Missing required field: runDetails"),
        ("/scheduler/rerun", {"runDetails": {}}, "Missing required field: runDetails.runID"),
        ("/scheduler/rerun", {"runDetails": {"runID": "8"}}, "Run 8 not found"),
    ]
    for path, body, error_start in cases:
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code == 400, (path, body)
        assert error_of(response)["errorString"].startswith(error_start)


async def test_read_endpoints_answer_404_for_unknown_ids(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/runs/4", "/api/v1/runs/4/results", "/api/v1/environments/9"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 404
        assert "not found" in error_of(response)["errorString"]
    response = await client.get("/api/v1/nothing", headers=AUTH)
    assert response.status_code == 404
    assert error_of(response)["errorString"] == "404: Not Found"


async def test_run_status_needs_a_known_run_counter(client: httpx.AsyncClient) -> None:
    for params in ({}, {"runCounter": "x"}, {"runCounter": "3"}):
        response = await client.get("/scheduler/runStatus", params=params, headers=AUTH)
        assert response.status_code == 400
        assert "runCounter" in error_of(response)["errorString"] or "Run 3" in response.text
