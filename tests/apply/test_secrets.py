"""No secret value leaves apply: not in its output, its JSON, its report, the CI summary,
the state database, nor in the errors of a 401 or of a 400 that echoes the request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.apply.service as service
from runner.apply import Runtime
from tests.apply._support import TOKEN, SimServer, batch, run, world, write_spec

# The markers are what a test looks for: any piece of a leaked value carries one.
PASSWORD_MARKER = "CANARYPW7f3a"
PASSWORD = PASSWORD_MARKER + " \"q\" 'a': {b} [c] #d &e *f !g |h >i %j @k `l` \\m\\ ,n ?o"
TOKEN_MARKER = "CANARYTOKEN9b2e"
SECRET_TOKEN = TOKEN_MARKER + "-Zq8"
CREDENTIALS = {
    "snowflakeAuthType": "Basic",
    "snowflakeUsername": "SVC_RUNNER",
    "snowflakePassword": "{{ secret('SNOWFLAKE_PASSWORD') }}",
    "snowflakeWarehouse": "WH",
}


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The secrets set in the environment; returns the CI summary file."""
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("COALESCE_TOKEN", SECRET_TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def _assert_clean(where: str, data: bytes | str) -> None:
    raw = data if isinstance(data, bytes) else data.encode()
    for marker in (PASSWORD_MARKER, TOKEN_MARKER):
        assert marker.encode() not in raw, f"a secret leaked into {where}"


def _assert_state_clean(folder: Path) -> None:
    files = sorted(folder.glob(".runner/state.db*"))
    assert files, "the state database was written"
    for file in files:  # the database, and its -wal and -shm files when present
        _assert_clean(str(file), file.read_bytes())


def _spec(specs: Path, url: str) -> None:
    runs = [run("one"), run("two", "{ name: BAD }")]  # one completes, one fails
    write_spec(specs, "alpha", "1", url, [batch("b", runs)], userCredentials=CREDENTIALS)


def test_no_secret_in_output_json_report_summary_or_state(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, canaries: Path
) -> None:
    served.reset(world(tokens=[SECRET_TOKEN]), speed=20)
    _spec(specs, served.url)

    text = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--report", "r1.md")
    as_json = run_cli(
        "apply", "--auto-approve", "--poll-interval", "0.02", "--format", "json",
        "--report", "r2.md",
    )  # fmt: skip

    assert text.code == as_json.code == 3, text.text + as_json.text
    # The password did reach Coalesce: the simulator accepted the Basic credentials.
    assert len(served.runs()) == 4
    document = json.loads(as_json.out)
    assert {r["status"] for r in document["runs"]} == {"completed", "failed"}
    for where, value in (
        ("text output", text.text),
        ("JSON output", as_json.text),
        ("report", (tmp_path / "r1.md").read_text() + (tmp_path / "r2.md").read_text()),
        ("GITHUB_STEP_SUMMARY", canaries.read_text()),
    ):
        _assert_clean(where, value)
    _assert_state_clean(tmp_path)


def test_no_secret_when_coalesce_refuses_the_token(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, canaries: Path
) -> None:
    served.reset(world(tokens=[TOKEN]))  # not the one apply sends
    _spec(specs, served.url)

    result = run_cli("apply", "--auto-approve", "--format", "json", "--report", "r.md")

    assert result.code == 1
    assert "401" in result.text and "COALESCE_TOKEN" in result.text
    assert served.start_runs() == []
    _assert_clean("output", result.text)
    _assert_clean("report", (tmp_path / "r.md").read_text() + canaries.read_text())
    _assert_state_clean(tmp_path)


def _echoing_coalesce(echo_as_json: bool) -> httpx.MockTransport:
    """A Coalesce that answers startRun with 400 and an error repeating the request it
    got: its body (so the password) and its Authorization header (so the token)."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/runs":
            return httpx.Response(200, json={"data": []})
        if path == "/api/v1/environments/1":
            return httpx.Response(200, json={"id": "1", "name": "alpha", "status": "Waiting"})
        if path == "/scheduler/startRun":
            echoed = f"{request.content.decode()} sent with {request.headers['authorization']}"
            if not echo_as_json:
                return httpx.Response(400, text=f"<html><pre>bad request: {echoed}</pre></html>")
            error = {"errorString": f"Invalid userCredentials in {echoed}", "errorDetail": echoed}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(404, json={"error": {"errorString": "404: Not Found"}})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("echo_as_json", [True, False], ids=["json-error", "html-error"])
def test_no_secret_when_coalesce_echoes_the_request_in_an_error(
    run_cli,
    specs: Path,
    tmp_path: Path,
    canaries: Path,
    monkeypatch: pytest.MonkeyPatch,
    echo_as_json: bool,
) -> None:
    transport = _echoing_coalesce(echo_as_json)
    # The command builds its Runtime with no arguments: hand it one with this transport.
    monkeypatch.setattr(service, "Runtime", lambda: Runtime(transport=transport))
    _spec(specs, "https://app.coalescesoftware.io")

    text = run_cli("apply", "--auto-approve", "--report", "r.md")
    as_json = run_cli("apply", "--auto-approve", "--format", "json")

    assert text.code == as_json.code == 1
    # The server's message is withheld whole (never edited), with the status and the
    # request fields it named.
    withheld = "Coalesce's error text was withheld because it contained a credential (status 400"
    assert withheld in text.out and "SVC_RUNNER" not in text.out
    runs: list[dict[str, Any]] = json.loads(as_json.out)["runs"]
    assert all(r["status"] == "not-started" and withheld in r["message"] for r in runs)
    _assert_clean("output", text.text + as_json.text)
    _assert_clean("report", (tmp_path / "r.md").read_text() + canaries.read_text())
    _assert_state_clean(tmp_path)
