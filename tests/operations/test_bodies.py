"""What a rerun sends, and what the journal keeps of it."""

from __future__ import annotations

from runner.operations import journal_request

ORIGINAL = {
    "runDetails": {
        "environmentID": "5",
        "jobID": "3",
        "includeNodesSelector": "{ location: FACT }",
        "parallelism": 4,
        "forceIgnoreEnvironmentStatus": True,
        "forceIgnoreWorkspaceStatus": True,
    },
    "userCredentials": {"snowflakeAuthType": "OAuth"},
    "parameters": {"load_date": "2026-01-04"},
}


def test_the_journal_keeps_the_original_run_with_what_the_rerun_sent() -> None:
    rerun = {
        "runDetails": {"runID": "12"},
        "userCredentials": {"snowflakeAuthType": "Basic", "snowflakePassword": "(secret)"},
        "parameters": {"load_date": "2026-01-05"},
    }
    kept = journal_request(ORIGINAL, rerun)
    assert kept == {
        "runDetails": {
            "environmentID": "5",
            "jobID": "3",
            "includeNodesSelector": "{ location: FACT }",
            "parallelism": 4,
        },
        "userCredentials": {"snowflakeAuthType": "Basic", "snowflakePassword": "(secret)"},
        "parameters": {"load_date": "2026-01-05"},
    }


def test_a_rerun_without_parameters_or_credentials_keeps_none() -> None:
    kept = journal_request(ORIGINAL, {"runDetails": {"runID": "12"}})
    assert "parameters" not in kept
    assert "userCredentials" not in kept
    assert "forceIgnoreEnvironmentStatus" not in kept["runDetails"]
