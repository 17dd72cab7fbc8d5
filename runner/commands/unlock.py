"""``runner unlock ENV``: remove an environment's lock, left behind by an apply that died."""

from __future__ import annotations

import click

from runner.commands._options import state_option
from runner.output import echo, echo_err


@click.command("unlock")
@click.argument("environment", metavar="ENV")
@state_option
def command(environment: str, state: str | None) -> int:
    """Remove ENV's lock, whoever holds it (see the holder with: runner status)."""
    from runner.operations import unlock
    from runner.operations.locks import unknown_environment
    from runner.render.status_output import render_unlock_text, unlock_warning
    from runner.state import open_state, state_path

    path = state_path(state)
    if not path.exists():
        raise unknown_environment(environment, (), path)
    with open_state(path) as store:
        result = unlock(store, environment)
    echo(render_unlock_text(result), end="")
    warning = unlock_warning(result)
    if warning:
        echo_err(warning)
    return 0
