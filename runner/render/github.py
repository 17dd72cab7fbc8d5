"""GitHub Actions' own surfaces: workflow annotations and the job's step summary.

Under ``GITHUB_ACTIONS=true``, the problems ``validate`` and ``plan`` find are also
printed as workflow commands (``::error file=specs/prod.yaml,line=12,col=5::message``),
which GitHub shows on the pull request's diff, and ``plan`` appends its markdown to the
file named by ``GITHUB_STEP_SUMMARY``, as ``apply`` does.

The messages are the program's own text, built from redacted values (a problem names a
place and what is wrong, never a secret's value); they are escaped as GitHub's runner
reads workflow commands, so that nothing in them (a newline followed by ``::``, a comma
in a file name) can end a command early or start another one. They go to stderr, which
the runner reads for commands too, so that stdout stays the document asked for
(``--format json``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runner.errors import Problem

if TYPE_CHECKING:
    from runner.plan.model import Plan, PlanWarning

__all__ = [
    "annotation",
    "in_github_actions",
    "plan_annotations",
    "print_annotations",
    "problem_annotations",
]

# "path:line:col: [warning: ]message", as a load-time problem is worded in a plan.
_PLACED = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?:warning: )?(?P<text>.*)$", re.S
)
# "path:line", as a planned run records where it is written.
_SOURCE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    severity: str,
    message: str,
    *,
    file: str | None = None,
    line: int = 0,
    col: int = 0,
    title: str | None = None,
) -> str:
    """One workflow command: ``::error file=F,line=L,col=C,title=T::message``."""
    kind = "error" if severity == "error" else "warning"
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
        if line > 0:
            props.append(f"line={line}")
            if col > 0:
                props.append(f"col={col}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{kind} {','.join(props)}" if props else f"::{kind}"
    return f"{head}::{_escape_data(message)}"


def _workspace_path(path: str, environ: Mapping[str, str]) -> str:
    """``path`` as GitHub wants it: relative to the checkout (``GITHUB_WORKSPACE``), when
    it is inside it."""
    workspace = environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return path
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(workspace)).as_posix()
    except ValueError:
        return path


def problem_annotations(
    problems: Iterable[Problem], environ: Mapping[str, str] | None = None
) -> Iterator[str]:
    """An annotation per spec problem, at its file, line and column."""
    environ = os.environ if environ is None else environ
    for problem in problems:
        yield annotation(
            problem.severity,
            problem.message,
            file=_workspace_path(problem.path, environ),
            line=problem.line,
            col=problem.col,
            title="runner",
        )


def plan_annotations(plan: Plan, environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """An annotation per warning of a plan (an error for a run that will be refused), at
    the place the warning names, else where its run is written, else its spec file."""
    environ = os.environ if environ is None else environ
    sources = {run.identity: run.source for run in plan.runs()}
    paths = {env.name: env.path for env in plan.environments}
    for warning in plan.warnings():
        file, line, col, text = _where(warning, sources, paths)
        yield annotation(
            "error" if warning.fails else "warning",
            text,
            file=_workspace_path(file, environ) if file else None,
            line=line,
            col=col,
            title=f"runner plan: {warning.environment}"
            + (f"/{warning.run}" if warning.run else ""),
        )


def _where(
    warning: PlanWarning, sources: Mapping[str, str], paths: Mapping[str, str]
) -> tuple[str | None, int, int, str]:
    placed = _PLACED.match(warning.message)
    if placed:
        return (
            placed["path"],
            int(placed["line"]),
            int(placed["col"]),
            placed["text"],
        )
    source = sources.get(f"{warning.environment}/{warning.run}") if warning.run else None
    found = _SOURCE.match(source or "")
    if found:
        return found["path"], int(found["line"]), 0, warning.message
    return paths.get(warning.environment) or None, 0, 0, warning.message


def print_annotations(lines: Iterable[str], stream: TextIO) -> None:
    for line in lines:
        stream.write(line + "\n")
    stream.flush()
