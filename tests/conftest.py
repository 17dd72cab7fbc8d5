"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.secrets import SCRUBBER
from tests.pg_server import PgServer, remove, start_server


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``runner ARGS`` in this process; returns exit code, stdout and stderr."""
    from runner.cli import run_cli as _run

    def call(*args: str) -> CliResult:
        code = _run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture
def write(tmp_path: Path):
    """Write ``{relative path: text}`` under tmp_path; returns tmp_path."""

    def files(tree: dict[str, str]) -> Path:
        for name, text in tree.items():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return tmp_path

    return files


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test runs in its own folder, with no runner variables or tokens from outside."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RUNNER_", "COALESCE_", "SNOWFLAKE_")):
            monkeypatch.delenv(name)
    yield
    SCRUBBER.clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session, started by the first test needing it."""
    server = start_server()
    if server is None:
        pytest.fail(
            "PostgreSQL is not installed here (no initdb on PATH, from pg_config, or in "
            "/usr/lib/postgresql/*/bin): install Debian's postgresql package"
        )
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh database on the session's server (its password is a canary)."""
    return pg_server.url(pg_server.new_database())


@pytest.fixture(params=["sqlite", "postgres"])
def any_state(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Where the test's commands keep their state, once on each backend: the default
    SQLite file (``.runner/state.db`` in the test's folder), then a fresh PostgreSQL
    database, given to every command (and process started) as ``RUNNER_STATE``."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        monkeypatch.setenv("RUNNER_STATE", url)
        return url
    return str(tmp_path / ".runner" / "state.db")
