"""The process-wide simulator behind sim:// URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import runner.sim
from runner.sim import SPEED_ENV, WORLD_ENV, SimClock, WorldError, embedded_app
from tests.sim.conftest import SMALL_WORLD


@pytest.fixture
def fresh_embedded() -> Iterator[None]:
    """Forget the process-wide simulator for the test, then put it back."""
    saved = runner.sim._embedded
    runner.sim._embedded = None
    try:
        yield
    finally:
        runner.sim._embedded = saved


def test_it_is_one_app_for_the_whole_process_with_the_demo_world(fresh_embedded: None) -> None:
    app = embedded_app()
    assert embedded_app() is app
    assert [env.name for env in app.simulator.world.environments] == ["dev", "prod", "qa"]
    assert isinstance(app.clock, SimClock) and app.clock.speed == 1.0


def test_variables_choose_its_world_and_speed(
    fresh_embedded: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(json.dumps(SMALL_WORLD))
    monkeypatch.setenv(WORLD_ENV, str(world))
    monkeypatch.setenv(SPEED_ENV, "25")
    app = embedded_app()
    assert [env.name for env in app.simulator.world.environments] == ["dev", "broken", "queued"]
    assert isinstance(app.clock, SimClock) and app.clock.speed == 25.0


@pytest.mark.parametrize("speed", ["fast", "0", "-2"])
def test_a_bad_speed_variable_is_a_clear_error(
    fresh_embedded: None, monkeypatch: pytest.MonkeyPatch, speed: str
) -> None:
    monkeypatch.setenv(SPEED_ENV, speed)
    with pytest.raises(WorldError, match=f"{SPEED_ENV}='{speed}' is not a speed"):
        embedded_app()
