"""``runner status``: the last apply, the runs still in flight, runs whose outcome is
uncertain, and the locks held; ``--refresh`` asks Coalesce about the runs in flight."""

from __future__ import annotations

import click

from runner.commands._options import parse_vars, state_option, var_option
from runner.output import echo


@click.command("status")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--env",
    "environments",
    multiple=True,
    metavar="NAME",
    help="Only this environment; repeatable.",
)
@var_option
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask Coalesce how the runs in flight stand and record it "
    "(reads the specs in PATH, default specs/, for each environment's URL and token).",
)
def command(
    paths: tuple[str, ...],
    environments: tuple[str, ...],
    variables: tuple[str, ...],
    state: str | None,
    fmt: str,
    refresh: bool,
) -> int:
    """Show the last apply, the runs still in flight and the locks held."""
    from runner.operations import (
        RefreshResult,
        load_specs_for_operations,
        read_status,
        refresh_in_flight,
    )
    from runner.render.status_output import render_status_json, render_status_text
    from runner.spec import DEFAULT_PATHS
    from runner.state import open_state, state_path

    path = state_path(state)
    # Without --refresh nothing is written, and a missing state is not created.
    writable = refresh and path.exists()
    with open_state(path, readonly=not writable) as store:
        refreshed = RefreshResult() if refresh else None
        if writable:
            refreshed = refresh_in_flight(
                store,
                lambda: load_specs_for_operations(
                    paths or DEFAULT_PATHS, variables=parse_vars(variables)
                ),
                environments,
            )
        report = read_status(store, environments, refresh=refreshed)
    echo(render_status_json(report) if fmt == "json" else render_status_text(report), end="")
    # Coalesce could not be asked (auth, API): an error, as for every other command.
    return 1 if refreshed is not None and refreshed.problems else 0
