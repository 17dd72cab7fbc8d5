"""Fixtures for the state store: a controllable clock and stores opened on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.state import SqlState, open_state, pg_schema, schema

THIS_HOST = "build-7"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@contextmanager
def first_schema_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: a runner that knows only schema version 1 (one serial for the whole
    state), on both backends."""
    with monkeypatch.context() as first_schema:
        for module in (schema, pg_schema):
            first_schema.setattr(module, "MIGRATIONS", module.MIGRATIONS[:1])
            first_schema.setattr(module, "LATEST_VERSION", 1)
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / ".runner" / "state.db"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend the store fixtures open. SQLite here; a module about the state's
    contract overrides it with both (see :data:`BOTH_BACKENDS`)."""
    name: str = request.param
    return name


#: ``pytestmark = BOTH_BACKENDS`` (or on one test): run it on SQLite and on PostgreSQL.
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def state_location(backend: str, state_file: Path, request: pytest.FixtureRequest) -> str:
    """Where the store fixtures open the state: a file, or a fresh PostgreSQL database."""
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(state_file)


@pytest.fixture
def open_store(state_location: str, clock: FakeClock) -> Iterator[Callable[..., SqlState]]:
    """Open stores on ``state_location`` (by default) with the fake clock and host; all
    are closed at the end of the test."""
    opened: list[SqlState] = []

    def make(path: Path | None = None, **options: Any) -> SqlState:
        options.setdefault("clock", clock)
        options.setdefault("hostname", THIS_HOST)
        store = open_state(path or state_location, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., SqlState]) -> SqlState:
    return open_store()
