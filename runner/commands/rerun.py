"""``runner rerun``: rerun failed runs (``POST /scheduler/rerun``), re-sending their
parameters and credentials from the specs."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

import click

from runner.commands._options import (
    command_argv,
    confirm,
    parse_vars,
    specs_option,
    state_option,
    var_option,
    waiting_options,
)
from runner.output import echo

if TYPE_CHECKING:  # imported when used, so that `runner rerun --help` starts fast
    from runner.operations import RerunSelection


@click.command("rerun")
@click.argument("runs", nargs=-1, metavar="[ENV/RUN]...")
@click.option(
    "--failed", is_flag=True, help="Rerun the failed and canceled runs of the last apply."
)
@specs_option("for parameters, credentials and tokens")
@var_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Rerun without asking for confirmation.")
@waiting_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def command(
    runs: tuple[str, ...],
    failed: bool,
    paths: tuple[str, ...],
    variables: tuple[str, ...],
    state: str | None,
    auto_approve: bool,
    no_wait: bool,
    poll_interval: float,
    lock_timeout: float,
    lookup_window: float,
    deploy_wait: float,
    fmt: str,
) -> int:
    """Rerun the failed nodes of failed or canceled runs: --failed for those of the last
    apply, or name them as ENV/RUN (globs allowed; with --failed, only those).

    Coalesce does not carry a run's parameters over to its rerun: they are sent again
    from the current specs, with the credentials and the force flag. The reruns are
    recorded as a new apply, which `runner apply --resume` continues if it is
    interrupted. Exit codes as apply: 0 ok, 3 a rerun failed, 1 error, 130 interrupted.
    """
    from runner.apply import ApplyOptions
    from runner.operations import (
        load_specs_for_operations,
        plan_reruns,
        rerun,
        select_for_rerun,
    )
    from runner.render.apply_output import progress_for
    from runner.render.status_output import (
        render_rerun_json,
        render_rerun_preview,
        render_rerun_summary,
    )
    from runner.spec import DEFAULT_PATHS
    from runner.state import open_state, state_path

    if not runs and not failed:
        raise click.UsageError(
            "name the runs to rerun as ENV/RUN (globs allowed), or pass --failed"
        )
    path = state_path(state)
    if not path.exists():
        echo(f"Nothing to rerun: no applies recorded yet (state: {path}).")
        return 0
    with open_state(path) as store:
        selection = select_for_rerun(store, runs, failed=failed)
        if not selection.runs:
            echo(_nothing_to_rerun(selection, runs))
            return 0
        given = parse_vars(variables)
        now = dt.datetime.now(
            dt.UTC
        )  # kept with the reruns: a resumed rerun renders the specs alike
        specs = load_specs_for_operations(paths or DEFAULT_PATHS, variables=given, now=now)
        plan = plan_reruns(selection, specs, variables=given, rendered_at=now)
        preview = render_rerun_preview(plan)
        echo(preview, end="", file=sys.stderr if fmt == "json" else None)
        confirm(
            "rerun",
            f"Rerun {len(plan.jobs)} run(s)?",
            auto_approve=auto_approve,
            review="what it would send",
        )
        options = ApplyOptions(
            no_wait=no_wait,
            poll_interval=poll_interval,
            lock_timeout=lock_timeout,
            lookup_window=lookup_window,
            deploy_wait=deploy_wait,
            argv=command_argv(),
        )
        progress = progress_for()
        try:
            outcome = rerun(plan, store=store, options=options, sink=progress)
        finally:
            progress.close()
    echo(render_rerun_json(outcome) if fmt == "json" else render_rerun_summary(outcome), end="")
    exit_code: int = outcome.exit_code
    return exit_code


def _nothing_to_rerun(selection: RerunSelection, runs: tuple[str, ...]) -> str:
    last = selection.last_apply
    if last is None:
        return "Nothing to rerun: no apply recorded yet."
    among = f" matching {', '.join(runs)}" if runs else ""
    text = (
        f"Nothing to rerun: the last apply ({last.apply_id}) has no failed or canceled run{among}."
    )
    if selection.in_flight:
        text += (
            f"\n{len(selection.in_flight)} of its runs are still in flight as far as the state "
            "knows; runner status --refresh asks Coalesce how they ended."
        )
    return text
