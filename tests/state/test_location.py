from __future__ import annotations

from pathlib import Path

from runner.state import state_path


def test_the_default_is_runner_state_db_in_the_current_folder() -> None:
    assert state_path(None, {}) == Path(".runner/state.db")


def test_the_environment_variable_overrides_the_default() -> None:
    assert state_path(None, {"RUNNER_STATE": "/srv/runner.db"}) == Path("/srv/runner.db")


def test_the_command_line_overrides_the_environment_variable() -> None:
    assert state_path("cli.db", {"RUNNER_STATE": "/srv/runner.db"}) == Path("cli.db")


def test_empty_values_count_as_not_given() -> None:
    assert state_path("", {"RUNNER_STATE": ""}) == Path(".runner/state.db")


def test_a_home_relative_path_is_expanded() -> None:
    assert state_path("~/runner.db", {}) == Path.home() / "runner.db"
