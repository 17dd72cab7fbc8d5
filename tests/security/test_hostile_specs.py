"""Specs written to do harm are refused before anything is read or sent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

HEAD = 'version: 1\nenvironmentID: "1"\n'
CREDS = (
    "userCredentials:\n  snowflakeUsername: u\n"
    "  snowflakePassword: \"{{ secret('SNOWFLAKE_PW') }}\"\n"
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Fail loudly if anything reaches the HTTP layer."""
    sent: list[httpx.Request] = []

    async def refuse(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> None:
        sent.append(request)
        raise AssertionError(f"a request was sent to {request.url}")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    return sent


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com",
        "https://app.coalescesoftware.io.evil.com",
        "http://app.coalescesoftware.io",
        "https://user:pw@app.coalescesoftware.io",
    ],
)
def test_foreign_url_is_refused_before_any_request_even_with_secrets(
    run_cli, write, no_network, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", "tok-valid-123")
    monkeypatch.setenv("SNOWFLAKE_PW", "pw-valid-456")
    write(
        {
            "specs/e.yaml": HEAD
            + f'coalesce: {{url: "{url}"}}\n'
            + CREDS
            + "runs: [{name: a, jobID: 1}]\n"
        }
    )
    for args in (("plan",), ("apply", "--auto-approve")):
        result = run_cli(*args)
        assert result.code == 1
        assert "specs/e.yaml:3:17: coalesce.url: " in result.err
    assert no_network == []
    assert "tok-valid-123" not in result.text and "pw-valid-456" not in result.text


@pytest.mark.parametrize(
    "place",
    [
        "    includeNodesSelector: \"{{ secret('SNOWFLAKE_PW') }}\"\n",
        "    excludeNodesSelector: \"{ name: {{ secret('SNOWFLAKE_PW') }} }\"\n",
        "    parameters: {leak: \"x{{ secret('SNOWFLAKE_PW') }}\"}\n",
        "    jobID: \"{{ secret('SNOWFLAKE_PW') }}\"\n",
    ],
)
def test_a_secret_outside_credentials_is_refused(run_cli, write, monkeypatch, place: str) -> None:
    monkeypatch.setenv("SNOWFLAKE_PW", "pw-valid-456")
    write({"e.yaml": HEAD + 'coalesce: {url: "sim://"}\nruns:\n  - name: a\n' + place})
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "a secret cannot be used in runs[0]." in result.err
    assert "pw-valid-456" not in result.text


def test_secret_file_cannot_read_outside_its_folders(run_cli, write, monkeypatch) -> None:
    write(
        {
            "e.yaml": HEAD + 'coalesce: {url: "sim://"}\n'
            "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
            "  snowflakeKeyPairKey: \"{{ secret_file(var('key')) }}\"\n"
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    monkeypatch.setenv("HOME", str(Path("home").resolve()))
    result = run_cli("validate", "e.yaml", "--var", "key=/etc/passwd")
    assert result.code == 1
    assert "secret_file('/etc/passwd'): /etc/passwd is outside the folders" in result.err
    assert "root:" not in result.text


def test_secret_dirs_extend_the_reach(run_cli, write, monkeypatch, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("keys")
    (outside / "k.p8").write_text(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"
    )
    write(
        {
            "e.yaml": HEAD + 'coalesce: {url: "sim://"}\n'
            "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
            f"  snowflakeKeyPairKey: \"{{{{ secret_file('{outside}/k.p8') }}}}\"\n"
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    monkeypatch.setenv("HOME", str(Path("home").resolve()))
    assert run_cli("validate", "e.yaml").code == 1
    monkeypatch.setenv("RUNNER_SECRET_DIRS", str(outside))
    result = run_cli("validate", "e.yaml")
    assert result.code == 0, result.err


def test_symlink_out_of_reach_is_refused(run_cli, write, monkeypatch) -> None:
    write(
        {
            "e.yaml": HEAD + 'coalesce: {url: "sim://"}\n'
            "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
            "  snowflakeKeyPairKey: \"{{ secret_file('link.p8') }}\"\n"
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    Path("link.p8").symlink_to("/etc/hostname")
    monkeypatch.setenv("HOME", str(Path("home").resolve()))
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "is outside the folders secret files may be read from" in result.err


def test_giant_spec_is_refused_without_reading_it_all(run_cli, write) -> None:
    write({"e.yaml": HEAD + "runs:\n" + "  - {name: a, allNodes: true}\n" * 120_000})
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "specs are limited to 1 MiB" in result.err


def test_deep_nesting_is_refused(run_cli, write) -> None:
    write({"e.yaml": HEAD + "x: " + "[" * 50_000 + "]" * 50_000 + "\n"})
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert "nesting deeper than" in result.err
