"""Fixtures for the apply tests: a served simulator (one process for the whole session,
reset before each test), an embedded one for ``sim://`` specs, and spec folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runner.sim
from runner.sim import SimApp, SimClock, create_app, demo_world, parse_world
from tests.apply._support import TOKEN, InProcess, SimServer, SimView, start_sim, world


@pytest.fixture(autouse=True)
def _token(_isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every apply test has the simulator's token, unless it sets another."""
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)


@pytest.fixture(scope="session")
def sim_process() -> Iterator[SimServer]:
    server = start_sim("--speed", "10")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(sim_process: SimServer) -> SimServer:
    """The served simulator, reset to the fast world at speed 10."""
    sim_process.reset(world())
    return sim_process


@pytest.fixture
def embed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SimApp]:
    """``embed(world_data, speed=10)``: a fresh simulator of that world behind ``sim://``."""

    def make(data: dict[str, Any], *, speed: float = 10.0) -> SimApp:
        app = create_app(parse_world(data), clock=SimClock(speed))
        monkeypatch.setattr(runner.sim, "_embedded", app)
        return app

    return make


@pytest.fixture
def embedded(embed: Callable[..., SimApp]) -> SimApp:
    """A fresh simulator of the fast world behind ``sim://``, at speed 10."""
    return embed(world())


@pytest.fixture
def embedded_demo(monkeypatch: pytest.MonkeyPatch) -> SimApp:
    """A fresh simulator of the demo world behind ``sim://``, at speed 10."""
    app = create_app(demo_world(), clock=SimClock(10))
    monkeypatch.setattr(runner.sim, "_embedded", app)
    return app


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


@pytest.fixture(params=["socket", "sim://"])
def any_sim(request: pytest.FixtureRequest, embed: Callable[..., SimApp]) -> Iterator[SimView]:
    """The simulator served over a socket, then the embedded one behind ``sim://``."""
    if request.param == "socket":
        yield request.getfixturevalue("served")
        return
    yield SimView(InProcess(embed(world())), "sim://")
