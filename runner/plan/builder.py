"""Building a plan: desired runs (from the specs) against a baseline, plus online facts."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from runner.coalesce import RunInfo
from runner.coalesce.matching import same_refresh, since_text
from runner.errors import Problem
from runner.identity import RunKey
from runner.plan.baseline import Baseline, BaselineRun
from runner.plan.diff import diff_requests
from runner.plan.jobs import JobOfRun, comparable, job_of_run
from runner.plan.model import (
    Action,
    BatchPlan,
    EnvironmentPlan,
    FieldChange,
    Plan,
    PlannedRun,
    PlanWarning,
    Selection,
)
from runner.plan.online import EnvironmentFacts
from runner.selectors import NodeGraph, SelectorError, parse_selector, resolve
from runner.spec import BatchSpec, EnvironmentSpec, RunSpec, SpecSet

FAILED_DEPLOY = "Failed Deploy"


@dataclass(frozen=True)
class Filters:
    """``--env NAME`` (exact) and ``--run GLOB`` (a run name or ``env/run``)."""

    environments: Sequence[str] = ()
    runs: Sequence[str] = ()

    def environment(self, name: str) -> bool:
        return not self.environments or name in self.environments

    def run(self, environment: str, name: str) -> bool:
        if not self.runs:
            return True
        identity = str(RunKey(environment, name))
        return any(
            fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(identity, g) for g in self.runs
        )


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan is made from."""

    specs: SpecSet
    baseline: Baseline
    state_serials: Mapping[str, int] = field(default_factory=dict)
    facts: Mapping[str, EnvironmentFacts] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    variables: Mapping[str, str] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    tool_version: str = ""


def make_plan(inputs: PlanInputs) -> Plan:
    """The plan: one entry per run of the selected specs, and the baseline's removed runs."""
    selected = [env for env in inputs.specs.environments if inputs.filters.environment(env.name)]
    environments = tuple(_plan_environment(env, inputs) for env in selected)
    # A saved plan goes stale when one of its own environments' files changes (its spec
    # and the bases it extends), not when another environment's spec is edited.
    spec_files = {name: inputs.specs.files[name] for env in selected for name in env.files}
    planned_envs = {env.name for env in inputs.specs.environments}
    orphans = _removed_environments(inputs, planned_envs)
    return Plan(
        environments=environments + orphans,
        baseline=inputs.baseline.label,
        created_at=inputs.now,
        # an environment the state has never seen is at 0
        state_serials={env.name: inputs.state_serials.get(env.name, 0) for env in selected},
        spec_files=dict(sorted(spec_files.items())),
        variables=dict(inputs.variables),
        tool_version=inputs.tool_version,
    )


def _plan_environment(env: EnvironmentSpec, inputs: PlanInputs) -> EnvironmentPlan:
    facts = inputs.facts.get(env.name)
    batches = tuple(_plan_batch(env, batch, inputs, facts) for batch in env.batches)
    desired = {run.identity for batch in batches for run in batch.runs}
    removed = tuple(
        _removed(base)
        for identity, base in sorted(inputs.baseline.runs.items())
        if base.environment == env.name
        and identity not in desired
        and inputs.filters.run(base.environment, base.name)
        and not _filtered_out(env, base, inputs.filters)
    )
    return EnvironmentPlan(
        name=env.name,
        environment_id=env.environment_id,
        url=env.url,
        path=env.path,
        batches=tuple(b for b in batches if b.runs),
        removed=removed,
        warnings=_environment_warnings(env, inputs.specs.warnings),
        status=facts.status if facts else None,
        offline_reason=facts.offline_reason if facts else None,
        deployed_commit=facts.deployed_commit if facts else None,
    )


def _filtered_out(env: EnvironmentSpec, base: BaselineRun, filters: Filters) -> bool:
    """A run still in the specs but left out by ``--run`` is not "removed"."""
    return any(run.name == base.name for run in env.runs()) and not filters.run(env.name, base.name)


def _plan_batch(
    env: EnvironmentSpec, batch: BatchSpec, inputs: PlanInputs, facts: EnvironmentFacts | None
) -> BatchPlan:
    runs = tuple(
        _plan_run(run, inputs.baseline.runs.get(run.identity), facts)
        for run in batch.runs
        if inputs.filters.run(env.name, run.name)
    )
    return BatchPlan(batch.name, batch.max_concurrent, batch.on_failure, runs)


def _plan_run(
    written: RunSpec, base: BaselineRun | None, facts: EnvironmentFacts | None
) -> PlannedRun:
    job = job_of_run(written, facts)
    run = job.run  # with the job's ID when the spec names it and the plan resolved it
    request = run.request.redacted()
    changes: tuple[FieldChange, ...] = ()
    ignored: tuple[FieldChange, ...] = ()
    graph = facts.graph if facts else None
    unchecked = _unchecked(run, graph) if graph else []
    selection = _selection(run, graph, job) if graph and not unchecked else None
    warnings = job.warnings + _run_warnings(run, selection, facts, unchecked)
    if base is None:
        action = Action.NEW
    else:
        changes, ignored = _split_ignored(diff_requests(*comparable(base, job, facts)), run)
        action = Action.CHANGED if changes else Action.UNCHANGED
        if base.uncertain:
            action = Action.UNCERTAIN
            warnings += (_uncertain_warning(run),)
    return PlannedRun(
        environment=run.environment,
        batch=run.batch,
        name=run.name,
        action=action,
        request=request,
        changes=changes,
        warnings=warnings,
        selection=selection,
        source=f"{run.path}:{run.line}",
        ignored=ignored,
        job=job.job,
    )


def _split_ignored(
    changes: tuple[FieldChange, ...], run: RunSpec
) -> tuple[tuple[FieldChange, ...], tuple[FieldChange, ...]]:
    """The changes that count, and those of fields the run's ``ignoreChanges`` names."""

    def ignored(change: FieldChange) -> bool:
        return any(
            change.field == field or change.field.startswith(field + ".")
            for field in run.ignore_changes
        )

    return (
        tuple(c for c in changes if not ignored(c)),
        tuple(c for c in changes if ignored(c)),
    )


def _uncertain_warning(run: RunSpec) -> PlanWarning:
    return PlanWarning(
        "uncertain",
        "an earlier apply sent this run and could not tell whether Coalesce created it; "
        "apply refuses this environment until `runner status --refresh` or "
        "`runner apply --resume` settles it",
        run.environment,
        run.name,
        fails=True,
    )


def _removed(base: BaselineRun) -> PlannedRun:
    return PlannedRun(base.environment, base.batch, base.name, Action.REMOVED, base.request)


def _removed_environments(inputs: PlanInputs, planned: set[str]) -> tuple[EnvironmentPlan, ...]:
    """Environments in the baseline whose spec is gone: all their runs are removed."""
    gone: dict[str, list[PlannedRun]] = {}
    for _identity, base in sorted(inputs.baseline.runs.items()):
        if base.environment in planned or not inputs.filters.environment(base.environment):
            continue
        if inputs.filters.run(base.environment, base.name):
            gone.setdefault(base.environment, []).append(_removed(base))
    return tuple(
        EnvironmentPlan(
            name=name,
            environment_id=str(runs[0].request.get("runDetails", {}).get("environmentID", "")),
            url="",
            path="",
            batches=(),
            removed=tuple(runs),
        )
        for name, runs in gone.items()
    )


def _selection(run: RunSpec, graph: NodeGraph, job: JobOfRun) -> Selection | None:
    """The nodes the run refreshes, as far as the plan can tell: each of its own
    selectors, else its job's as Coalesce lists them (a selector the run gives replaces
    the job's). ``None`` when they cannot be resolved here."""
    include, exclude = run.request.include_nodes_selector, run.request.exclude_nodes_selector
    if run.request.names_a_job:
        include, exclude = include or job.include, exclude or job.exclude
        if include is None or _untested_attributes((include, exclude), graph):
            return None  # the job's own selectors decide, and they are not known here
    try:
        ids = resolve(
            parse_selector(include) if include else None,
            parse_selector(exclude) if exclude else None,
            graph,
        )
    except SelectorError:
        return None  # the run's are validated already; a job's is Coalesce's to judge
    names = tuple(graph.node(i).name for i in ids)
    return Selection(tuple(ids), names)


def _unchecked(run: RunSpec, graph: NodeGraph) -> list[str]:
    """The attributes the run's selectors test that ``graph`` does not know."""
    return _untested_attributes(
        (run.request.include_nodes_selector, run.request.exclude_nodes_selector), graph
    )


def _untested_attributes(selectors: Sequence[str | None], graph: NodeGraph) -> list[str]:
    found: set[str] = set()
    for text in selectors:
        if not text:
            continue
        try:
            tested = parse_selector(text).attributes()
        except SelectorError:
            continue
        found.update(a.value for a in tested & graph.unknown_attributes)
    return sorted(found)


def _run_warnings(
    run: RunSpec,
    selection: Selection | None,
    facts: EnvironmentFacts | None,
    unchecked: Sequence[str] = (),
) -> tuple[PlanWarning, ...]:
    """``unchecked``: the attributes the selectors test that the node list does not
    report (the selection is then unknown, not empty)."""
    request = run.request
    warnings: list[PlanWarning] = []

    def warn(code: str, message: str, *, fails: bool = False) -> None:
        warnings.append(PlanWarning(code, message, run.environment, run.name, fails))

    scoped = request.names_a_job or any(
        (request.include_nodes_selector, request.exclude_nodes_selector)
    )
    if not scoped:
        count = f" ({selection.count} nodes)" if selection else ""
        warn("whole-environment", f"refreshes the whole environment{count}: no jobID or selector")
    if unchecked:
        warn(
            "not-checked",
            f"the selectors test {', '.join(unchecked)}, which Coalesce's node list does not "
            "report: not checked against the nodes (sent as written)",
        )
    twin = _running_twin(run, facts)
    if twin is not None:
        warn(
            "already-running",
            f"already running as run {twin.id}{since_text(twin.runStartTime)}: apply will "
            f"{IF_RUNNING[run.if_running]} (ifRunning: {run.if_running})",
        )
    forced = request.forced
    if forced:
        warn("force", "forceIgnoreEnvironmentStatus is set: runs even if the last deploy failed")
    if facts and facts.status == FAILED_DEPLOY and not forced:
        warn(
            "failed-deploy",
            "the environment is in Failed Deploy: Coalesce will refuse this run; redeploy, "
            "or set forceIgnoreEnvironmentStatus: true",
            fails=True,
        )
    if selection is not None and selection.count == 0 and request.include_nodes_selector:
        if run.allow_empty:
            warn("empty-selection", "the include selector matches no node (allowEmpty: true)")
        else:
            warn(
                "empty-selection",
                "the include selector matches no node: the run would refresh nothing. "
                "Fix the selector, or set allowEmpty: true",
                fails=True,
            )
    return tuple(warnings)


#: What apply does about a run whose refresh Coalesce already runs, by ``ifRunning``.
IF_RUNNING = {
    "wait": "wait for it to end, then fire",
    "skip": "skip this run",
    "fire": "fire it anyway, beside it",
}


def _running_twin(run: RunSpec, facts: EnvironmentFacts | None) -> RunInfo | None:
    """A refresh Coalesce runs (anyone's) that is the one ``run`` would fire."""
    if facts is None or run.request.unresolved:
        return None  # (a job not resolved: which refresh it is, is not known)
    wanted = run.request.redacted()
    return next((info for info in facts.running if same_refresh(info, wanted)), None)


def _environment_warnings(
    env: EnvironmentSpec, problems: Sequence[Problem]
) -> tuple[PlanWarning, ...]:
    """Load-time warnings about this environment's files (e.g. a secret not set)."""
    return tuple(
        PlanWarning(
            "missing-secret" if "secret" in p.message else "spec",
            f"{p.path}:{p.line}:{p.col}: {p.message}",
            env.name,
        )
        for p in problems
        if p.path in env.files
    )
