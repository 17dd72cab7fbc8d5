"""``runner rerun``: rerun failed runs (``POST /scheduler/rerun``), re-sending their
parameters and credentials from the specs."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

import click

from runner.commands._options import parse_vars, state_option, var_option
from runner.errors import RunnerError
from runner.output import echo, echo_err

REAL_COALESCE_MIN_POLL = 1.0


@click.command("rerun")
@click.argument("runs", nargs=-1, metavar="[ENV/RUN]...")
@click.option(
    "--failed", is_flag=True, help="Rerun the failed and canceled runs of the last apply."
)
@click.option(
    "--specs",
    "paths",
    multiple=True,
    metavar="PATH",
    help="A spec file or folder, for parameters, credentials and tokens (default: specs/).",
)
@var_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Rerun without asking for confirmation.")
@click.option("--no-wait", is_flag=True, help="Return once the last reruns are fired.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01, 3600),
    default=10.0,
    show_default=True,
    help="Seconds between status polls (at least 1 against real Coalesce).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0, 86400),
    default=0.0,
    help="Seconds to wait for an apply's lock on an environment.",
)
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
    fmt: str,
) -> int:
    """Rerun the failed nodes of failed or canceled runs: --failed for those of the last
    apply, or name them as ENV/RUN (globs allowed; with --failed, only those).

    Coalesce does not carry a run's parameters over to its rerun: they are sent again
    from the current specs, with the credentials and the force flag. The reruns are
    recorded as a new apply. Exit codes as apply: 0 ok, 3 a rerun failed, 1 error.
    """
    from runner.apply import ApplyOptions
    from runner.apply.operations import (
        load_specs_for_operations,
        plan_reruns,
        rerun,
        select_for_rerun,
    )
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
        specs = load_specs_for_operations(paths or DEFAULT_PATHS, variables=parse_vars(variables))
        plan = plan_reruns(selection, specs)
        preview = render_rerun_preview(plan)
        echo(preview, end="", file=sys.stderr if fmt == "json" else None)
        _confirm(len(plan.jobs), auto_approve)
        options = ApplyOptions(
            no_wait=no_wait,
            poll_interval=poll_interval,
            lock_timeout=lock_timeout,
            argv=tuple(sys.argv[1:]),
        )
        options = _poll_floor(options, [env.url for env in plan.environments.values()])
        progress = _progress()
        try:
            outcome = rerun(plan, store=store, options=options, sink=progress)
        finally:
            progress.close()
    echo(render_rerun_json(outcome) if fmt == "json" else render_rerun_summary(outcome), end="")
    exit_code: int = outcome.exit_code
    return exit_code


def _nothing_to_rerun(selection: Any, runs: tuple[str, ...]) -> str:
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


def _confirm(count: int, auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise RunnerError(
            "rerun asks for confirmation, and there is no terminal to ask on",
            hint="review what it would send, then run again with --auto-approve",
        )
    answer = click.prompt(
        f"Rerun {count} run(s)? Type 'yes' to go on", default="", show_default=False
    )
    if answer.strip() != "yes":
        raise RunnerError("rerun canceled: nothing was fired")


def _poll_floor(options: Any, urls: list[str]) -> Any:
    """Real Coalesce is polled at most once a second; the simulator and loopback faster."""
    local = all(u.startswith("sim://") or _loopback(u) for u in urls)
    if local or options.poll_interval >= REAL_COALESCE_MIN_POLL:
        return options
    echo_err(f"note: --poll-interval raised to {REAL_COALESCE_MIN_POLL:g}s for Coalesce")
    return replace(options, poll_interval=REAL_COALESCE_MIN_POLL)


def _loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _progress() -> Any:
    from runner.render.apply_output import LineProgress, LiveProgress

    if sys.stderr.isatty() and not os.environ.get("CI"):
        return LiveProgress([])
    return LineProgress()
