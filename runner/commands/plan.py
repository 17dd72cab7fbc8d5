"""``runner plan``: show which runs would fire and what changed, for review."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from runner.commands._options import (
    filter_options,
    parse_vars,
    plan_format_option,
    spec_paths,
    state_option,
    var_option,
)
from runner.errors import SpecError
from runner.output import echo, echo_err, note

EXIT_CHANGES = 2


@click.command("plan")
@spec_paths
@filter_options
@var_option
@state_option
@click.option("--against", metavar="GIT_REF", help="Compare with the specs at this git revision.")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Write a plan file for apply.")
@plan_format_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--offline", is_flag=True, help="Read nothing from Coalesce.")
@click.option("--show-nodes", is_flag=True, help="List the nodes each run selects (online).")
def command(
    paths: tuple[str, ...],
    environments: tuple[str, ...],
    runs: tuple[str, ...],
    variables: tuple[str, ...],
    state: str | None,
    against: str | None,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    offline: bool,
    show_nodes: bool,
) -> int:
    """Show which runs would fire (default: specs/) and how each differs from the last apply."""
    from runner.plan import Filters, PlanRequest, plan_specs, write_plan_file
    from runner.plan.service import open_state_reader
    from runner.render import plan_marker
    from runner.state import state_path

    request = PlanRequest(
        paths=paths or ("specs",),
        variables=parse_vars(variables),
        filters=Filters(environments, runs),
        against=against,
        offline=offline,
    )
    reader = open_state_reader(state_path(state))
    try:
        result = plan_specs(request, state=reader)
    except SpecError as error:
        _annotate_problems(error)
        raise
    finally:
        reader.close()
    plan = result.plan
    marker = plan_marker({"path": _scope_paths(request.paths), "env": environments, "run": runs})
    echo(_render(plan, fmt, show_nodes, marker), end="")
    _github(plan, marker)
    if out is not None:
        write_plan_file(plan, out)
        note(f"Plan written to {out}; apply it with: runner apply {out}")
    if any(w.fails for w in plan.warnings()):
        echo_err("error: some runs will be refused or fail as written (see above)")
        return 1
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return 0


def _scope_paths(paths: Sequence[str]) -> list[str]:
    """The spec paths as the marker names them: ``specs/`` and ``./specs`` are ``specs``."""
    return [Path(os.path.normpath(p)).as_posix() for p in paths]


def _annotate_problems(error: SpecError) -> None:
    from runner.render.github import in_github_actions, print_annotations, problem_annotations

    if in_github_actions():
        print_annotations(problem_annotations(error.problems), sys.stderr)


def _github(plan: Any, marker: str) -> None:
    """Under GitHub Actions: the plan's warnings as annotations, and its markdown appended
    to the job's step summary (wherever GITHUB_STEP_SUMMARY names one, as apply does)."""
    from runner.render import render_plan_summary
    from runner.render.github import in_github_actions, plan_annotations, print_annotations

    if in_github_actions():
        print_annotations(plan_annotations(plan), sys.stderr)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary_file:
        return
    try:
        with Path(summary_file).open("a", encoding="utf-8") as handle:
            handle.write(render_plan_summary(plan, marker=marker) + "\n")
    except OSError as error:
        echo_err(
            f"warning: could not write the job summary (GITHUB_STEP_SUMMARY) to "
            f"{summary_file}: {error.strerror or error}"
        )


def _render(plan: object, fmt: str, show_nodes: bool, marker: str) -> str:
    from runner.plan import Plan
    from runner.render import (
        render_plan_json,
        render_plan_markdown,
        render_plan_text,
        use_color,
    )

    assert isinstance(plan, Plan)
    if fmt == "json":
        return render_plan_json(plan)
    if fmt == "markdown":
        return render_plan_markdown(plan, marker=marker)
    return render_plan_text(plan, color=use_color(sys.stdout), show_nodes=show_nodes)
