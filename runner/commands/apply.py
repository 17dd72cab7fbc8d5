"""``runner apply``: fire the runs in batches, wait for them, and record what happened."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from click.core import ParameterSource

from runner.commands._options import (
    command_argv,
    confirm,
    filter_options,
    parse_vars,
    spec_paths,
    state_option,
    var_option,
    waiting_options,
)
from runner.errors import RunnerError
from runner.output import echo, echo_err

if TYPE_CHECKING:  # imported when used, so that `runner apply --help` starts fast
    from runner.apply import ApplyOptions, ApplyResult, Prepared
    from runner.plan import Plan
    from runner.render.apply_output import FireAgain
    from runner.state import StateStore


@click.command("apply")
@spec_paths
@filter_options
@var_option
@state_option
@click.option("--auto-approve", is_flag=True, help="Fire without asking for confirmation.")
@click.option("--changed-only", is_flag=True, help="Fire only new and changed runs.")
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="startRun calls in flight at once, over all environments.",
)
@waiting_options
@click.option("--resume", is_flag=True, help="Continue the last interrupted apply.")
@click.option(
    "--refire-uncertain",
    is_flag=True,
    help="With --resume: fire anew the runs whose creation is uncertain and that Coalesce "
    "still does not show after a last look.",
)
@click.option(
    "--if-running",
    type=click.Choice(["wait", "skip", "fire"]),
    help="When Coalesce already runs the same refresh (anyone's): wait for it to end, then "
    "fire; skip the run (exit 3); or fire anyway. Default: each run's ifRunning (wait).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--report", type=click.Path(path_type=Path), help="Write a markdown report here.")
def command(
    paths: tuple[str, ...],
    environments: tuple[str, ...],
    runs: tuple[str, ...],
    variables: tuple[str, ...],
    state: str | None,
    auto_approve: bool,
    changed_only: bool,
    max_concurrent: int,
    no_wait: bool,
    poll_interval: float,
    lock_timeout: float,
    lookup_window: float,
    deploy_wait: float,
    resume: bool,
    refire_uncertain: bool,
    if_running: str | None,
    fmt: str,
    report: Path | None,
) -> int:
    """Fire the runs of the specs (default: specs/), or of a plan file from `plan --out`.

    Output: progress goes to stderr as it happens (a live table on a terminal, else one
    line per change); the plan, the summary and what to do next go to stdout (with
    --format json, stdout holds only the JSON document). Every line is written out at
    once, so a log that takes both streams into one (2>&1) reads in order."""
    from runner.apply import ApplyOptions
    from runner.state import open_state, state_path

    store = open_state(state_path(state))
    try:
        options = ApplyOptions(
            max_concurrent=max_concurrent,
            no_wait=no_wait,
            poll_interval=poll_interval,
            lock_timeout=lock_timeout,
            lookup_window=lookup_window,
            deploy_wait=deploy_wait,
            refire_uncertain=refire_uncertain,
            if_running=if_running,
            argv=command_argv(),
        )
        if refire_uncertain and not resume:
            raise RunnerError(
                "--refire-uncertain goes with --resume",
                hint="runner apply --resume --refire-uncertain",
            )
        again = _fire_again(options.argv, None)
        if resume:
            result = _resume(store, options, fmt)
        else:
            prepared = _prepare(paths, environments, runs, variables, changed_only, store, fmt)
            if prepared is None:
                return 0
            _confirm(prepared, auto_approve, fmt)
            if changed_only or _is_plan_file(paths):
                # What fires was decided against the state at plan time: keep it so.
                options = replace(options, plan_serials=prepared.plan.state_serials or {})
            if _is_plan_file(paths):
                again = _fire_again(options.argv, prepared.plan)
            result = _run(prepared, store, options, fmt)
    finally:
        store.close()
    _report(result, fmt, report, again)
    exit_code: int = result.exit_code
    return exit_code


def _prepare(
    paths: tuple[str, ...],
    environments: tuple[str, ...],
    runs: tuple[str, ...],
    variables: tuple[str, ...],
    changed_only: bool,
    store: StateStore,
    fmt: str,
) -> Prepared | None:
    from runner.apply import load_specs_for_plan, prepare
    from runner.plan import Filters, PlanRequest, check_fresh, plan_specs, read_plan_file

    if _is_plan_file(paths):
        if environments or runs or variables:
            raise RunnerError(
                "a plan file is applied as planned: --env, --run and --var do not apply"
            )
        plan = read_plan_file(Path(paths[0]))
        names = [env.name for env in plan.environments]
        check_fresh(plan, store.serials(names), paths[0])
        specs = load_specs_for_plan(plan, os.environ)
    else:
        request = PlanRequest(
            paths=paths or ("specs",),
            variables=parse_vars(variables),
            filters=Filters(environments, runs),
            offline=True,  # apply reads each environment itself, just before firing
            offline_reason="apply reads it just before firing",
            resolve_job_names=True,  # but the plan it asks to confirm holds the job IDs
            require_secrets=True,
        )
        result = plan_specs(request, state=store)
        plan, specs = result.plan, result.specs
    prepared = prepare(plan, specs, changed_only=changed_only)
    if prepared.run_count == 0:
        echo(
            "Nothing to fire."
            + (" (--changed-only: no new or changed runs)" if changed_only else ""),
            file=_human_stream(fmt),
        )
        return None
    return prepared


def _is_plan_file(paths: tuple[str, ...]) -> bool:
    from runner.plan.planfile import looks_like_plan_file

    return len(paths) == 1 and looks_like_plan_file(paths[0])


def _human_stream(fmt: str) -> TextIO:
    """Where text for people goes: stdout, unless stdout carries the JSON document."""
    return sys.stderr if fmt == "json" else sys.stdout


def _confirm(prepared: Prepared, auto_approve: bool, fmt: str) -> None:
    from runner.render import render_plan_text, use_color

    stream = _human_stream(fmt)
    echo(render_plan_text(prepared.plan, color=use_color(stream)), file=stream, end="")
    confirm(
        "apply",
        f"Fire {prepared.run_count} run(s) in {len(prepared.jobs)} environment(s)?",
        auto_approve=auto_approve,
        review="the plan",
        err=fmt == "json",
    )


def _run(prepared: Prepared, store: StateStore, options: ApplyOptions, fmt: str) -> ApplyResult:
    from runner.apply import RunReport, apply_prepared
    from runner.render.apply_output import progress_for

    reports = [
        RunReport(run.environment, run.batch, run.name)
        for job in prepared.jobs
        for run in job.runs()
    ]
    progress = progress_for(reports)
    try:
        return apply_prepared(prepared, store=store, options=options, sink=progress)
    finally:
        progress.close()


def _resume(store: StateStore, options: ApplyOptions, fmt: str) -> ApplyResult:
    from runner.operations import resume
    from runner.render.apply_output import progress_for

    progress = progress_for()
    try:
        return resume(store, options=options, sink=progress)
    finally:
        progress.close()


def _report(result: ApplyResult, fmt: str, report: Path | None, again: FireAgain) -> None:
    from runner.render.apply_output import (
        render_apply_json,
        render_apply_markdown,
        render_apply_summary,
    )

    echo(
        render_apply_json(result) if fmt == "json" else render_apply_summary(result, again),
        end="",
    )
    markdown = render_apply_markdown(result)
    if report is not None:
        _write(report, markdown, "w", "the report (--report)")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        _write(Path(summary_file), markdown, "a", "the job summary (GITHUB_STEP_SUMMARY)")


#: Options that say which runs to fire or how to resume: the command that fires again
#: the runs not fired names them itself.
_NOT_REPEATED = frozenset(
    {"paths", "environments", "runs", "variables", "changed_only", "resume", "refire_uncertain"}
)


def _fire_again(argv: Sequence[str], plan: Plan | None) -> FireAgain:
    """How to fire again just some runs of this apply (``ENV/RUN`` identities): the
    arguments it was given, with the same spec paths (for a plan file: the specs the
    plan was made from, with its --var values), state and options, its environments
    narrowed to those of the runs, and the runs named one by one."""
    given = list(argv)
    rest = given[given.index("apply") + 1 :] if "apply" in given else given
    context = command.make_context("apply", rest, resilient_parsing=True)
    params = context.params

    def build(identities: Sequence[str]) -> list[str]:
        environments = list(dict.fromkeys(identity.partition("/")[0] for identity in identities))
        if plan is not None:
            paths = [env.path for env in plan.environments if env.name in environments]
            variables = [f"{name}={value}" for name, value in plan.variables.items()]
        else:
            paths, variables = list(params.get("paths") or ()), list(params.get("variables") or ())
        args = ["apply", *paths]
        args += [arg for name in environments for arg in ("--env", name)]
        args += [arg for pair in variables for arg in ("--var", pair)]
        for param in command.params:
            name = param.name or ""
            if name in _NOT_REPEATED or not isinstance(param, click.Option):
                continue
            if context.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
                continue
            args += _option_args(param, params[name])
        args += [arg for identity in identities for arg in ("--run", identity)]
        return args

    return build


def _option_args(option: click.Option, value: Any) -> list[str]:
    flag = max(option.opts, key=len)  # the long form
    if option.is_flag:
        return [flag] if value else []
    values = value if option.multiple else (value,)
    return [arg for item in values if item is not None for arg in (flag, str(item))]


def _write(path: Path, text: str, mode: str, what: str) -> None:
    """Write a file about an apply that has happened: a failure to write it is said, and
    does not hide how the apply went (its exit code stays the apply's)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open(mode) as handle:
            handle.write(text)
    except OSError as error:
        echo_err(f"error: could not write {what} to {path}: {error.strerror or error}")
