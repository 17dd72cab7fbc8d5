"""``runner validate``: check spec files, with every problem in one pass; no network."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from runner.commands._options import parse_vars, spec_paths, var_option
from runner.errors import Problem, SpecError
from runner.output import echo, echo_err, is_quiet
from runner.spec import DEFAULT_PATHS, RenderOptions, load_specs


@click.command("validate")
@spec_paths
@var_option
def command(paths: tuple[str, ...], variables: tuple[str, ...]) -> int:
    """Check spec files (default: specs/); no network, secrets optional."""
    options = RenderOptions(variables=parse_vars(variables), require_secrets=False)
    try:
        specs = load_specs(paths or DEFAULT_PATHS, options=options)
    except SpecError as error:
        _annotate(error.problems)
        for problem in error.problems:
            echo_err(str(problem))
        errors = sum(1 for p in error.problems if p.severity == "error")
        files = len({p.path for p in error.problems if p.severity == "error"})
        echo_err(
            f"{errors} error{'s' if errors != 1 else ''} in {files} file{'s' if files != 1 else ''}"
        )
        return 1
    _annotate(specs.warnings)
    for warning in specs.warnings:
        echo_err(str(warning))
    if is_quiet():
        return 0
    runs = sum(1 for _ in specs.runs())
    envs = len(specs.environments)
    echo(
        f"{len(specs.files)} file{'s' if len(specs.files) != 1 else ''} valid: "
        f"{envs} environment{'s' if envs != 1 else ''}, {runs} run{'s' if runs != 1 else ''}"
        + (
            f", {len(specs.warnings)} warning{'s' if len(specs.warnings) != 1 else ''}"
            if specs.warnings
            else ""
        )
    )
    return 0


def _annotate(problems: Sequence[Problem]) -> None:
    """Under GitHub Actions, each problem also as an annotation on the pull request's diff."""
    from runner.render.github import in_github_actions, print_annotations, problem_annotations

    if in_github_actions():
        print_annotations(problem_annotations(problems), sys.stderr)
