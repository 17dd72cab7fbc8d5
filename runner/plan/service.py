"""Planning from paths to a Plan: load the specs, pick the baseline, read Coalesce, diff."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import httpx

from runner.errors import RunnerError, did_you_mean, quoted, quoted_list
from runner.plan.baseline import (
    Baseline,
    git_baseline,
    planned_state_baseline,
    state_baseline,
)
from runner.plan.builder import Filters, PlanInputs, make_plan
from runner.plan.model import Plan
from runner.plan.online import EnvironmentFacts, read_environments, read_job_lists
from runner.runtime import Runtime, on_own_loop
from runner.spec import DEFAULT_PATHS, EnvironmentSpec, RenderOptions, SpecSet, load_specs
from runner.spec.loader import gc_paused
from runner.state import StateLocation, StateReader, open_state


@dataclass(frozen=True)
class PlanRequest:
    """What ``runner plan`` was asked for."""

    paths: Sequence[str] = DEFAULT_PATHS
    variables: Mapping[str, str] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    against: str | None = None
    offline: bool = False
    offline_reason: str = "--offline"
    require_secrets: bool = False
    now: dt.datetime | None = None
    # Offline, still read the jobs of environments whose runs name a job by name, so the
    # plan holds their IDs (apply plans this way: it reads the rest just before firing).
    resolve_job_names: bool = False


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    specs: SpecSet


def tool_version() -> str:
    try:
        return version("runner")
    except PackageNotFoundError:
        return "0+unknown"


async def aplan_specs(
    request: PlanRequest,
    *,
    state: StateReader | None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PlanResult:
    """Load the specs and make the plan (online unless ``request.offline``), inside a
    running event loop; :func:`plan_specs` is the same on a loop of its own."""
    with gc_paused():
        return await _plan_specs(request, state, environ, transport)


#: :func:`aplan_specs` on an event loop of its own (it fails inside a running one, as
#: ``asyncio.run`` does: an async orchestrator awaits :func:`aplan_specs`).
plan_specs = on_own_loop(aplan_specs)


async def _plan_specs(
    request: PlanRequest,
    state: StateReader | None,
    environ: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> PlanResult:
    environ = os.environ if environ is None else environ
    now = request.now or dt.datetime.now(dt.UTC)
    options = RenderOptions(
        variables=dict(request.variables),
        environ=environ,
        now=now,
        require_secrets=request.require_secrets,
    )
    wanted = request.filters.environments or None
    specs = load_specs(
        request.paths or DEFAULT_PATHS, options=options, environ=environ, environments=wanted
    )
    _check_selected(request.filters.environments, specs)
    selected = [e for e in specs.environments if request.filters.environment(e.name)]
    # The serials first: an apply committed while the baseline is read then leaves the
    # plan stale (made again), never current with a baseline from before that apply.
    serials = state.serials(e.name for e in selected) if state is not None else {}
    baseline = _baseline(request, options, state, [e.name for e in selected], specs)
    if request.offline:
        facts = {
            e.name: EnvironmentFacts(e.name, offline_reason=request.offline_reason)
            for e in selected
        }
        if request.resolve_job_names:
            facts |= await aread_jobs(selected, request.offline_reason, environ, transport)
    else:
        facts = await aread_online(selected, environ, transport)
    plan = make_plan(
        PlanInputs(
            specs=specs,
            baseline=baseline,
            state_serials=serials,
            facts=facts,
            filters=request.filters,
            variables=dict(request.variables),
            now=now,
            tool_version=tool_version(),
        )
    )
    return PlanResult(plan, specs)


def _check_selected(wanted: Sequence[str], specs: SpecSet) -> None:
    """Every ``--env`` names an environment of the specs (a typo must not plan nothing)."""
    found = {e.name for e in specs.environments}
    missing = [name for name in wanted if name not in found]
    if not missing:
        return
    known = sorted(found | set(specs.unselected))
    meant = did_you_mean(missing[0], known)
    raise RunnerError(
        f"--env {missing[0]}: no spec names this environment "
        f"(the specs name {quoted_list(known) or 'none'})",
        hint=f"did you mean {quoted(meant)}?" if meant else "check --env and the spec paths",
    )


def _baseline(
    request: PlanRequest,
    options: RenderOptions,
    state: StateReader | None,
    environments: Sequence[str],
    specs: SpecSet,
) -> Baseline:
    paths = list(request.paths or DEFAULT_PATHS)
    if request.against:
        return git_baseline(request.against, paths, options)
    if request.filters.environments:
        return state_baseline(state, environments)
    return planned_state_baseline(state, paths, [e.name for e in specs.environments])


async def aread_online(
    environments: Sequence[EnvironmentSpec],
    environ: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, EnvironmentFacts]:
    async with Runtime(transport, environ).pool() as pool:
        return await read_environments(environments, pool)


async def aread_jobs(
    environments: Sequence[EnvironmentSpec],
    offline_reason: str,
    environ: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, EnvironmentFacts]:
    """The jobs of the environments whose runs name a job by name (and nothing else)."""
    naming = [e for e in environments if any(r.request.job_name for r in e.runs())]
    if not naming:
        return {}
    async with Runtime(transport, environ).pool() as pool:
        return await read_job_lists(naming, offline_reason, pool)


def open_state_reader(path: StateLocation) -> StateReader:
    """The state for reading; a state that does not exist yet reads as empty."""
    return open_state(path, readonly=True)
