"""Rules that span fields of a spec, checked on its rendered data (so that they are
reported in the same pass as type errors): each problem where it can be fixed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.coalesce.urls import check_url
from runner.errors import Problem, RunnerError, quoted
from runner.selectors import SelectorError, lint_selector, parse_selector
from runner.spec.located import Located, Path_
from runner.spec.yaml_source import Pos

SELECTOR_KEYS = ("includeNodesSelector", "excludeNodesSelector")
#: The keys that narrow a run to some of the environment's nodes.
SCOPE_KEYS = ("job", "jobID", *SELECTOR_KEYS)


def run_checks(data: Any, located: Located, environ: Mapping[str, str]) -> list[Problem]:
    """The rules on the spec's rendered data, whether or not its fields have the right
    types: a type error elsewhere must not hide a duplicate name until it is fixed."""
    if not isinstance(data, Mapping):
        return []
    problems = _runs_or_batches(data, located)
    problems += _unique_names(data, located)
    problems += _selectors(data, located)
    problems += _whole_environment(data, located)
    problems += _one_way_to_name_the_job(data, located)
    problems += _url(data, located, environ)
    return problems


def _runs_or_batches(data: Mapping[str, Any], located: Located) -> list[Problem]:
    runs, batches = data.get("runs"), data.get("batches")
    if runs is not None and batches is not None:
        return [
            located.key_pos(("batches",)).problem(
                "a spec has either runs: or batches:, not both; move the runs into a batch"
            )
        ]
    if runs is None and batches is None:
        return [located.value_pos(()).problem("a spec needs runs: (one batch) or batches:")]
    return []


def _maps(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The mappings of a list, with their indexes (anything else is the model's to report)."""
    if isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, Mapping))


def _runs_with_paths(data: Mapping[str, Any]) -> Iterator[tuple[Path_, Mapping[str, Any]]]:
    for index, run in _maps(data.get("runs")):
        yield ("runs", index), run
    for b_index, batch in _maps(data.get("batches")):
        for index, run in _maps(batch.get("runs")):
            yield ("batches", b_index, "runs", index), run


def _unique_names(data: Mapping[str, Any], located: Located) -> list[Problem]:
    problems: list[Problem] = []
    first_run: dict[str, Pos] = {}
    for path, run in _runs_with_paths(data):
        name = run.get("name")
        if not isinstance(name, str):
            continue
        pos = located.value_pos((*path, "name"))
        if name in first_run:
            problems.append(
                pos.problem(
                    f"duplicate run name {quoted(name)} (first used at line "
                    f"{first_run[name].line}); run names must be unique within a spec"
                )
            )
        else:
            first_run[name] = pos
    first_batch: dict[str, Pos] = {}
    for index, batch in _maps(data.get("batches")):
        name = batch.get("name")
        if not isinstance(name, str):
            continue
        pos = located.value_pos(("batches", index, "name"))
        if name in first_batch:
            problems.append(
                pos.problem(
                    f"duplicate batch name {quoted(name)} (first used at line "
                    f"{first_batch[name].line})"
                )
            )
        else:
            first_batch[name] = pos
    return problems


def _selectors(data: Mapping[str, Any], located: Located) -> list[Problem]:
    places: list[tuple[Path_, Mapping[str, Any]]] = list(_runs_with_paths(data))
    defaults = data.get("defaults")
    if isinstance(defaults, Mapping):
        places.append((("defaults",), defaults))
    problems: list[Problem] = []
    for path, settings in places:
        for key in SELECTOR_KEYS:
            text = settings.get(key)
            if isinstance(text, str):
                problems += check_selector(text, (*path, key), located)
    return problems


def _one_way_to_name_the_job(data: Mapping[str, Any], located: Located) -> list[Problem]:
    """``job`` (a name) and ``jobID`` name the same thing two ways: a run takes one. One
    in ``defaults`` and the other in the run is refused too, since which one would win
    is not something a reader should have to know."""
    defaults = data.get("defaults")
    inherited = dict(defaults) if isinstance(defaults, Mapping) else {}
    problems: list[Problem] = []
    for path, run in _runs_with_paths(data):
        settings = {**inherited, **run}
        if settings.get("job") is None or settings.get("jobID") is None:
            continue
        key = "job" if "job" in run else "jobID" if "jobID" in run else None
        where = (*path, key) if key else ("defaults", "job")
        name = run.get("name")
        called = f"run {name!r}" if isinstance(name, str) else "this run"
        problems.append(
            located.key_pos(where).problem(
                f"{called} names its job twice, by job and by jobID"
                + ("" if key and {"job", "jobID"} <= set(run) else " (one from defaults)")
                + ": keep one of them"
            )
        )
    return problems


def _whole_environment(data: Mapping[str, Any], located: Located) -> list[Problem]:
    """A run with no job and no selector refreshes every node of the environment: that
    must be asked for with ``allNodes: true``, never be what a forgotten key does."""
    defaults = data.get("defaults")
    inherited = dict(defaults) if isinstance(defaults, Mapping) else {}
    problems: list[Problem] = []
    for path, run in _runs_with_paths(data):
        settings = {**inherited, **run}
        scoped = [key for key in SCOPE_KEYS if settings.get(key) is not None]
        all_nodes = settings.get("allNodes") is True
        name = run.get("name")
        called = f"run {name!r}" if isinstance(name, str) else "this run"
        if not scoped and not all_nodes:
            problems.append(
                located.value_pos(path).problem(
                    f"{called} names no job and no selector, so it would refresh every node "
                    "of the environment; give it a job, a jobID or an includeNodesSelector, "
                    "or set allNodes: true if the whole environment is meant"
                )
            )
        elif scoped and all_nodes:
            where = (*path, "allNodes") if "allNodes" in run else ("defaults", "allNodes")
            problems.append(
                located.key_pos(where).problem(
                    f"{called} sets allNodes: true and {', '.join(scoped)}: allNodes means every "
                    "node, so remove one of them"
                )
            )
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


def _url(data: Mapping[str, Any], located: Located, environ: Mapping[str, str]) -> list[Problem]:
    coalesce = data.get("coalesce")
    url = coalesce.get("url") if isinstance(coalesce, Mapping) else None
    if not isinstance(url, str):
        return []  # no URL: the default one; not text: the model reports it
    try:
        check_url(url, environ)
    except RunnerError as error:
        return [located.value_pos(("coalesce", "url")).problem(f"coalesce.url: {error}")]
    return []
