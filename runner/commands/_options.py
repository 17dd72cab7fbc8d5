"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """``--var name=value`` pairs as a dict; a pair without ``=`` is a usage error."""
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"'{pair}' is not name=value", param_hint="--var")
        variables[name.strip()] = value
    return variables


def spec_paths(func: F) -> F:
    return click.argument("paths", nargs=-1, type=click.Path(path_type=str))(func)


def var_option(func: F) -> F:
    return click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="A value for var('NAME') in templates (also RUNNER_VAR_NAME).",
    )(func)


def filter_options(func: F) -> F:
    func = click.option(
        "--run",
        "runs",
        multiple=True,
        metavar="GLOB",
        help="Only runs whose name (or ENV/NAME) matches; repeatable.",
    )(func)
    return click.option(
        "--env",
        "environments",
        multiple=True,
        metavar="NAME",
        help="Only this environment; repeatable.",
    )(func)


def state_option(func: F) -> F:
    return click.option(
        "--state",
        metavar="PATH",
        help="The state database (default: $RUNNER_STATE or .runner/state.db).",
    )(func)
