"""Fixtures for the state store: a controllable clock and stores opened on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.state import SqlState, open_state

THIS_HOST = "build-7"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / ".runner" / "state.db"


@pytest.fixture
def open_store(state_file: Path, clock: FakeClock) -> Iterator[Callable[..., SqlState]]:
    """Open stores on ``state_file`` (by default) with the fake clock and host; all are
    closed at the end of the test."""
    opened: list[SqlState] = []

    def make(path: Path | None = None, **options: Any) -> SqlState:
        options.setdefault("clock", clock)
        options.setdefault("hostname", THIS_HOST)
        store = open_state(path or state_file, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., SqlState]) -> SqlState:
    return open_store()
