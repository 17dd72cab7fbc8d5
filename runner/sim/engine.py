"""The simulator's state: the world, the runs, and what was observed.

Creating a run computes its whole schedule at once (see :mod:`runner.sim.schedule`), so
no task runs in the background: every answer derives from the clock's "now".

Runs of one environment run concurrently. An environment with ``maxConcurrentRuns``
lets at most that many run at once; later runs wait (``waitingToRun``), first come
first served.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TypeVar

from runner.selectors import SelectorError
from runner.sim.clock import Clock
from runner.sim.faults import FaultInjector
from runner.sim.graph import ProjectGraph, SimNode, build_graph
from runner.sim.observe import Observations
from runner.sim.runs import Run, RunRequest
from runner.sim.schedule import NodeFailure, NodePlan, plan_nodes
from runner.sim.selection import parse, select_nodes
from runner.sim.world import (
    EnvironmentSpec,
    FailureRule,
    JobSpec,
    ProjectSpec,
    World,
    WorldError,
)

__all__ = ["Simulator"]

_MILLISECOND = 0.001
#: How many selections and plans are remembered before starting over (selectors and
#: parallelism come from requests, so their variety is unbounded).
_REMEMBERED = 1024
_K = TypeVar("_K")
_V = TypeVar("_V")


class Simulator:
    """Everything the simulator knows and remembers. Thread-safe."""

    def __init__(self, world: World, *, clock: Clock, seed: int | None = None) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._seed_override = seed
        self.faults = FaultInjector(world.faults, seed if seed is not None else world.seed)
        self.observations = Observations()
        self.load(world)

    # ----------------------------------------------------------------- world

    def load(self, world: World) -> None:
        """Start over with ``world``: no runs, an empty log, zero counters."""
        graphs = {project.id: build_graph(project) for project in world.projects}
        _check_job_selectors(world)
        with self._lock:
            self.world = world
            self.seed = self._seed_override if self._seed_override is not None else world.seed
            self.projects: dict[str, ProjectSpec] = {p.id: p for p in world.projects}
            self.graphs: dict[str, ProjectGraph] = graphs
            self.environments: dict[str, EnvironmentSpec] = {e.id: e for e in world.environments}
            self.runs: dict[int, Run] = {}
            # The runs of each environment, oldest first, so that nothing per request
            # scans the runs of every environment.
            self._runs_of: dict[str, list[Run]] = {e.id: [] for e in world.environments}
            # Per environment, the latest start of a run that was not canceled before it
            # started: no later run may start before it. Forgotten when a cancel moves
            # starts, and then computed again.
            self._queue_tail: dict[str, float] = {}
            self._last_created = float("-inf")
            # Both are functions of the world alone (graphs, durations), and most runs of
            # an apply ask for the same few selections.
            self._selections: dict[tuple[str, str | None, str | None], tuple[str, ...]] = {}
            self._plans: dict[tuple[str, tuple[str, ...], int], tuple[NodePlan, ...]] = {}
            self.faults.configure(world.faults, self.seed)
            self.observations.clear()

    def graph(self, environment: EnvironmentSpec) -> ProjectGraph:
        return self.graphs[environment.project]

    def set_environment_status(self, environment_id: str, status: str) -> None:
        """What a deploy does to the environment's health, seen from outside."""
        with self._lock:
            current = self.environments[environment_id]
            self.environments[environment_id] = current.model_copy(update={"status": status})

    def set_deployed_commit(self, environment_id: str, commit: str) -> None:
        """What a deploy of another commit shows."""
        with self._lock:
            current = self.environments[environment_id]
            self.environments[environment_id] = current.model_copy(
                update={"deployedCommit": commit}
            )

    def deploy_jobs(self, project_id: str, jobs: Sequence[JobSpec]) -> None:
        """Replace the project's jobs, as a deploy of changed job files does: a job may
        be renamed, removed, or given another ID."""
        project = self.projects[project_id].model_copy(update={"jobs": tuple(jobs)})
        graph = build_graph(project)
        _check_project_job_selectors(project)
        with self._lock:
            self.projects[project_id] = project
            self.graphs[project_id] = graph

    def environment_status(self, environment: EnvironmentSpec, now: float) -> str:
        """The world's status, shown as ``Refreshing`` while one of its runs is active
        (a ``Failed Deploy`` environment keeps showing that)."""
        if environment.status != "Waiting":
            return environment.status
        active = any(not run.is_terminal(now) for run in self._environment_runs(environment.id))
        return "Refreshing" if active else environment.status

    # ----------------------------------------------------------------- runs

    def start_run(self, request: RunRequest, body: dict[str, object]) -> Run:
        """Create a run of the nodes ``request`` selects."""
        environment = self.environments[request.environment_id]
        graph = self.graph(environment)
        include, exclude = request.include, request.exclude
        if request.job is not None:
            include = include if include is not None else request.job.include
            exclude = exclude if exclude is not None else request.job.exclude
        return self._create("startRun", request, graph, self._select(graph, include, exclude), body)

    def rerun(self, original: Run, request: RunRequest, body: dict[str, object]) -> Run:
        """Create a run of the nodes of ``original`` that did not complete."""
        nodes = original.unfinished_nodes(self.clock.now())
        return self._create("rerun", request, original.graph, nodes, body)

    def cancel(self, run: Run) -> None:
        """Stop ``run`` now; runs queued behind it may start earlier."""
        with self._lock:
            now = self.clock.now()
            run.canceled_at = now
            self._requeue_after(run, now)
            self._queue_tail.pop(run.environment_id, None)

    def _select(self, graph: ProjectGraph, include: str | None, exclude: str | None) -> list[str]:
        key = (graph.project_id, include, exclude)
        selected = self._selections.get(key)
        if selected is None:
            selected = tuple(select_nodes(graph, include, exclude))
            _remember(self._selections, key, selected)
        return list(selected)

    def run(self, run_id: int) -> Run | None:
        return self.runs.get(run_id)

    def all_runs(self) -> list[Run]:
        with self._lock:
            return list(self.runs.values())

    def runs_of(self, environment_id: str) -> list[Run]:
        """The runs of one environment, oldest first."""
        with self._lock:
            return list(self._environment_runs(environment_id))

    def _create(
        self,
        kind: str,
        request: RunRequest,
        graph: ProjectGraph,
        node_ids: list[str],
        body: dict[str, object],
    ) -> Run:
        environment = self.environments[request.environment_id]
        with self._lock:
            run_id = len(self.runs) + 1
            # Creation times are unique to the millisecond, so a time cursor (which has
            # millisecond precision) never splits two runs.
            created = max(self.clock.now(), self._last_created + _MILLISECOND)
            self._last_created = created
            nodes = [graph.nodes[node_id] for node_id in node_ids]
            plans = self._plan(
                graph, node_ids, nodes, self._failures(environment, run_id, nodes), request
            )
            run = Run(
                id=run_id,
                kind="rerun" if kind == "rerun" else "startRun",
                request=request,
                graph=graph,
                created=created,
                start=created,
                nodes=plans,
                runtime_parameters=dict(
                    request.parameters if request.parameters is not None else environment.parameters
                ),
                body=body,
            )
            earlier = self._runs_of[environment.id]
            tail = self._queue_tail.get(environment.id)
            if tail is None:
                tail = _latest_start(earlier)
            run.start = self._queue_start(environment, run, earlier, tail)
            self._queue_tail[environment.id] = max(tail, run.start)
            self.runs[run_id] = run
            earlier.append(run)
            return run

    def _plan(
        self,
        graph: ProjectGraph,
        node_ids: list[str],
        nodes: list[SimNode],
        failures: dict[str, NodeFailure],
        request: RunRequest,
    ) -> list[NodePlan]:
        """The schedule of the nodes; without failures it depends only on the nodes and
        the parallelism, and is remembered."""
        key = (graph.project_id, tuple(node_ids), request.parallelism)
        if not failures:
            known = self._plans.get(key)
            if known is not None:
                return list(known)
        plans = plan_nodes(
            node_ids,
            {node.id: node.depends_on for node in nodes},
            {node.id: self._duration(node) for node in nodes},
            failures,
            request.parallelism,
        )
        if not failures:
            _remember(self._plans, key, tuple(plans))
        return plans

    def _environment_runs(self, environment_id: str) -> list[Run]:
        """The runs of the environment, oldest first (the simulator's own list)."""
        return self._runs_of.get(environment_id, [])

    def _queue_start(
        self, environment: EnvironmentSpec, run: Run, earlier: list[Run], tail: float
    ) -> float:
        """When ``run`` leaves waitingToRun: after the start delay, once a run slot of its
        environment is free, and not before a run queued ahead of it (``tail`` is the
        :func:`_latest_start` of ``earlier``)."""
        ready = max(run.created + self.world.behavior.startDelay, tail)
        limit = environment.maxConcurrentRuns
        if limit is None:
            return ready
        # Only runs still going at ``ready`` can hold a slot then or later.
        going = [o for o in earlier if o.finished_at > ready]
        candidates = sorted({ready, *(o.finished_at for o in going)})
        for moment in candidates:
            busy = sum(1 for o in going if o.start <= moment < o.finished_at)
            if busy < limit:
                return moment
        return candidates[-1]  # unreachable: after the last end no slot is busy

    def _requeue_after(self, canceled: Run, now: float) -> None:
        environment = self.environments[canceled.environment_id]
        ordered = sorted(self._environment_runs(environment.id), key=lambda r: r.id)
        for index, run in enumerate(ordered):
            if run.id <= canceled.id or run.start <= now or run.canceled_at is not None:
                continue
            earlier = [o for o in ordered[:index] if o.id != run.id]
            start = self._queue_start(environment, run, earlier, _latest_start(earlier))
            run.start = max(now, start)

    # ----------------------------------------------------------------- behaviour

    def _duration(self, node: SimNode) -> float:
        for rule in self.world.behavior.durations:
            if _matches(node, rule.name, rule.location, rule.nodeType):
                return rule.seconds
        return self.world.behavior.nodeSeconds

    def _failures(
        self, environment: EnvironmentSpec, run_id: int, nodes: Iterable[SimNode]
    ) -> dict[str, NodeFailure]:
        failures: dict[str, NodeFailure] = {}
        for node in nodes:
            rule = self._failure_rule(environment, node)
            if rule is None:
                continue
            # One draw per run and node, from a string seed: the same world, seed and
            # run number always fail the same nodes, whatever else happened.
            draw = random.Random(f"{self.seed}:{run_id}:{node.id}").random()
            if draw < rule.probability:
                failures[node.id] = NodeFailure(rule.error, rule.detail)
        return failures

    def _failure_rule(self, environment: EnvironmentSpec, node: SimNode) -> FailureRule | None:
        for rule in self.world.behavior.failures:
            if rule.environments is not None and environment.id not in rule.environments:
                continue
            if _matches(node, rule.name, rule.location, rule.nodeType):
                return rule
        return None

    # ----------------------------------------------------------------- concurrency

    def concurrency(self, environment_id: str, now: float) -> dict[str, int]:
        """The most runs of the environment that were running at once, and the most
        that were active (waiting or running) at once, up to ``now``."""
        runs = self._environment_runs(environment_id)
        running = [(r.start, r.finished_at) for r in runs if r.start < min(now, r.finished_at)]
        active = [(r.created, r.finished_at) for r in runs]
        return {
            "maxRunning": _max_overlap(running, now),
            "maxActive": _max_overlap(active, now),
        }


def _check_job_selectors(world: World) -> None:
    for project in world.projects:
        _check_project_job_selectors(project)


def _check_project_job_selectors(project: ProjectSpec) -> None:
    for job in project.jobs:
        for which, text in (("include", job.include), ("exclude", job.exclude)):
            if not text:
                continue
            try:
                parse(text)
            except SelectorError as error:
                raise WorldError(
                    f"project {project.id}, job {job.id} ({job.name}): the {which} selector "
                    f"is not valid: {error.message} (column {error.column})",
                    hint="See the selector syntax in docs/simulator.md.",
                ) from None


def _matches(node: SimNode, name: str | None, location: str | None, node_type: str | None) -> bool:
    checks = ((name, node.name), (location, node.location), (node_type, node.node_type))
    return all(
        pattern is None or fnmatchcase(value.lower(), pattern.lower()) for pattern, value in checks
    )


def _remember(memory: dict[_K, _V], key: _K, value: _V) -> None:
    if len(memory) >= _REMEMBERED:
        memory.clear()
    memory[key] = value


def _latest_start(runs: Iterable[Run]) -> float:
    """The latest start of the runs that were not canceled before they started."""
    return max(
        (o.start for o in runs if o.canceled_at is None or o.canceled_at > o.start),
        default=float("-inf"),
    )


def _max_overlap(intervals: list[tuple[float, float]], now: float) -> int:
    """The most half-open intervals ``[start, end)`` that overlap, counting only the
    part before ``now``."""
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        if start > now or end <= start:
            continue
        events.append((start, 1))
        events.append((min(end, now + 1e-9), -1))
    peak = current = 0
    for _, change in sorted(events):  # at equal times an end (-1) sorts before a start
        current += change
        peak = max(peak, current)
    return peak
