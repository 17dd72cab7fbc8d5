"""``runner cancel``: cancel runs in flight (``POST /scheduler/cancelRun``)."""

from __future__ import annotations

import click

from runner.commands._options import parse_vars, specs_option, state_option, var_option
from runner.output import echo


@click.command("cancel")
@click.argument("runs", nargs=-1, metavar="[ENV/RUN]...")
@click.option("--all", "all_runs", is_flag=True, help="Cancel every run in flight.")
@specs_option("for each environment's URL and token")
@var_option
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def command(
    runs: tuple[str, ...],
    all_runs: bool,
    paths: tuple[str, ...],
    variables: tuple[str, ...],
    state: str | None,
    fmt: str,
) -> int:
    """Cancel runs in flight: name them as ENV/RUN (globs allowed), or pass --all.

    A run that had already ended is reported with its status. Exit 0 when every run was
    canceled or had ended, 1 otherwise.
    """
    from runner.operations import (
        cancel_runs,
        load_specs_for_operations,
        select_for_cancel,
    )
    from runner.render.status_output import render_cancel_json, render_cancel_text
    from runner.spec import DEFAULT_PATHS
    from runner.state import open_state, state_path

    if all_runs == bool(runs):
        raise click.UsageError(
            "pass --all or name runs as ENV/RUN, not both"
            if all_runs
            else "name the runs to cancel as ENV/RUN (globs allowed), or pass --all"
        )
    path = state_path(state)
    # A missing state is read as empty, and not created.
    with open_state(path, readonly=not path.exists()) as store:
        selection = select_for_cancel(store, runs, all_runs=all_runs)
        result = cancel_runs(
            store,
            lambda: load_specs_for_operations(
                paths or DEFAULT_PATHS, variables=parse_vars(variables)
            ),
            selection,
        )
    echo(render_cancel_json(result) if fmt == "json" else render_cancel_text(result), end="")
    exit_code: int = result.exit_code
    return exit_code
