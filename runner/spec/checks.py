"""Rules that span fields of a validated spec: each problem where it can be fixed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from runner.coalesce.urls import check_url
from runner.errors import Problem, RunnerError
from runner.selectors import SelectorError, lint_selector, parse_selector
from runner.spec.located import Located, Path_
from runner.spec.models import Run, RunSettings, Spec
from runner.spec.yaml_source import Pos

SELECTOR_KEYS = ("includeNodesSelector", "excludeNodesSelector")


def run_checks(spec: Spec, located: Located, environ: Mapping[str, str]) -> list[Problem]:
    problems = _runs_or_batches(spec, located)
    problems += _unique_names(spec, located)
    problems += _selectors(spec, located)
    problems += _url(spec, located, environ)
    return problems


def _runs_or_batches(spec: Spec, located: Located) -> list[Problem]:
    if spec.runs is not None and spec.batches is not None:
        return [
            located.key_pos(("batches",)).problem(
                "a spec has either runs: or batches:, not both; move the runs into a batch"
            )
        ]
    if spec.runs is None and spec.batches is None:
        return [located.value_pos(()).problem("a spec needs runs: (one batch) or batches:")]
    return []


def _runs_with_paths(spec: Spec) -> Iterator[tuple[Path_, Run]]:
    for index, run in enumerate(spec.runs or []):
        yield ("runs", index), run
    for b_index, batch in enumerate(spec.batches or []):
        for index, run in enumerate(batch.runs):
            yield ("batches", b_index, "runs", index), run


def _unique_names(spec: Spec, located: Located) -> list[Problem]:
    problems: list[Problem] = []
    first_run: dict[str, Pos] = {}
    for path, run in _runs_with_paths(spec):
        pos = located.value_pos((*path, "name"))
        if run.name in first_run:
            problems.append(
                pos.problem(
                    f"duplicate run name '{run.name}' (first used at line "
                    f"{first_run[run.name].line}); run names must be unique within a spec"
                )
            )
        else:
            first_run[run.name] = pos
    first_batch: dict[str, Pos] = {}
    for index, batch in enumerate(spec.batches or []):
        pos = located.value_pos(("batches", index, "name"))
        if batch.name in first_batch:
            problems.append(
                pos.problem(
                    f"duplicate batch name '{batch.name}' (first used at line "
                    f"{first_batch[batch.name].line})"
                )
            )
        else:
            first_batch.setdefault(batch.name, pos)
    return problems


def _selectors(spec: Spec, located: Located) -> list[Problem]:
    places: list[tuple[Path_, RunSettings]] = list(_runs_with_paths(spec))
    if spec.defaults is not None:
        places.append((("defaults",), spec.defaults))
    problems: list[Problem] = []
    for path, settings in places:
        for key in SELECTOR_KEYS:
            text = getattr(settings, key)
            if text is not None:
                problems += check_selector(text, (*path, key), located)
    return problems


def check_selector(text: str, path: Path_, located: Located) -> list[Problem]:
    """Selector syntax errors and lint warnings, at their column inside the spec line."""
    pos = located.value_pos(path)
    templated = path in located.templated

    def at(column: int, message: str, severity: str = "error") -> Problem:
        if templated or pos.style in ("|", ">"):
            return pos.problem(f"{key}: {message}", severity=severity)
        quote = 1 if pos.style in ('"', "'") else 0
        return pos.problem(f"{key}: {message}", severity=severity, offset=quote + column - 1)

    key = str(path[-1])
    try:
        tree = parse_selector(text)
    except SelectorError as error:
        return [at(error.column, f"invalid selector: {error.message}")]
    return [at(w.column, w.message, "warning") for w in lint_selector(tree)]


def _url(spec: Spec, located: Located, environ: Mapping[str, str]) -> list[Problem]:
    try:
        check_url(spec.coalesce.url, environ)
    except RunnerError as error:
        return [located.value_pos(("coalesce", "url")).problem(f"coalesce.url: {error}")]
    return []
