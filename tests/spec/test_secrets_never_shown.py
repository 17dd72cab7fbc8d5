"""Canary secrets never appear in validate's output, its errors, or debug tracebacks."""

from __future__ import annotations

import pytest

import runner.spec.loader
from runner.secrets import Secret, foreign_text, holds_secret

CANARY_TOKEN = "CANARY-TOKEN-5b1e0f"
CANARY_PASSWORD = 'CANARY-PW-"q:{x}\n#9'
CANARY_KEY = (
    "-----BEGIN PRIVATE KEY-----\nCANARYKEYLINE0123456789abcdef\n-----END PRIVATE KEY-----\n"
)
CANARIES = [CANARY_TOKEN, "CANARY-PW", "CANARYKEYLINE0123456789abcdef"]

SPEC = (
    'version: 1\nenvironmentID: "1"\n'
    "coalesce: {url: 'sim://', token: \"{{ secret('COALESCE_TOK') }}\"}\n"
    "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
    "  snowflakeKeyPairKey: \"{{ secret_file('key.p8') }}\"\n"
    "  snowflakeKeyPairPass: \"{{ secret('SNOWFLAKE_PW') }}\"\n"
    "runs:\n  - name: a\n    allNodes: true\n"
)


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch, write) -> None:
    monkeypatch.setenv("COALESCE_TOK", CANARY_TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PW", CANARY_PASSWORD)
    write({"key.p8": CANARY_KEY})


def assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


def test_valid_run_shows_no_secret(canary_env, run_cli, write) -> None:
    write({"e.yaml": SPEC})
    result = run_cli("validate", "e.yaml")
    assert result.code == 0
    assert_no_canary(result.text)


def test_errors_show_no_secret(canary_env, run_cli, write) -> None:
    write(
        {"e.yaml": SPEC + "    parameters: {p: \"{{ secret('SNOWFLAKE_PW') }}\"}\n    jobID: x\n"}
    )
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "a secret cannot be used in runs[0].parameters.p" in result.err
    assert_no_canary(result.text)


def test_debug_traceback_shows_the_frames_and_withholds_the_message(
    canary_env, run_cli, write, monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"bug while resolving with {CANARY_TOKEN} and {CANARY_PASSWORD!r}")

    monkeypatch.setattr(runner.spec.loader, "resolve_environment", leaky)
    monkeypatch.setenv("RUNNER_DEBUG", "1")
    write({"e.yaml": SPEC})
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert 'File "' in result.err and "in leaky" in result.err  # the frames are kept
    assert "The RuntimeError's message was withheld because it contained a credential" in (
        result.err
    )
    assert "internal error: RuntimeError: Its message was withheld" in result.err
    assert_no_canary(result.text)


def test_literal_credential_is_refused_and_not_echoed(run_cli, write) -> None:
    write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
            "userCredentials:\n  snowflakeUsername: u\n  snowflakePassword: LITERAL-CANARY-77\n"
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "LITERAL-CANARY-77" not in result.text
    assert holds_secret("echo LITERAL-CANARY-77")  # known as a secret all the same


def test_secret_type_never_prints_its_value() -> None:
    secret = Secret(CANARY_TOKEN)
    Secret(CANARY_PASSWORD)
    assert str(secret) == repr(secret) == f"{secret}" == "(secret)"
    assert CANARY_TOKEN not in str({"token": secret})
    echoed = f"json: {CANARY_PASSWORD!r} raw: {CANARY_TOKEN}"
    assert foreign_text(echoed, context="It") == (
        "It was withheld because it contained a credential"
    )
