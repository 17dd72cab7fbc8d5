"""Runs: what was asked, the precomputed schedule, and how the run looks at any instant.

A run leaves ``waitingToRun`` at ``start`` and is ``running`` until its last node has
settled; its status at any time is a pure function of that time (and of a cancel, if
one happened before it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from runner.sim.graph import ProjectGraph
from runner.sim.schedule import NodePlan
from runner.sim.world import JobSpec

__all__ = ["NodeState", "Run", "RunRequest"]

NodeStateName = Literal["running", "complete", "failed", "skipped", "canceled"]


@dataclass(frozen=True)
class RunRequest:
    """A validated startRun or rerun request: what the run is asked to do."""

    environment_id: str
    job: JobSpec | None = None
    include: str | None = None
    exclude: str | None = None
    parallelism: int = 16
    force: bool | None = None
    parameters: dict[str, str] | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # without secrets
    rerun_of: int | None = None


@dataclass(frozen=True)
class NodeState:
    """One node of a run as seen at some instant (pending nodes have none)."""

    plan: NodePlan
    state: NodeStateName
    start: float | None  # absolute times
    end: float | None


@dataclass
class Run:
    """One run of an environment."""

    id: int
    kind: Literal["startRun", "rerun"]
    request: RunRequest
    graph: ProjectGraph
    created: float
    start: float
    nodes: list[NodePlan]
    runtime_parameters: dict[str, str]
    body: dict[str, Any]  # the request body, secrets redacted
    canceled_at: float | None = None

    @property
    def environment_id(self) -> str:
        return self.request.environment_id

    @cached_property
    def duration(self) -> float:
        """Seconds from start to the last node settling."""
        return max((plan.settled_at for plan in self.nodes), default=0.0)

    @cached_property
    def has_failures(self) -> bool:
        return any(plan.outcome == "failed" for plan in self.nodes)

    @property
    def finished_at(self) -> float:
        """When the run ends (or ended): its last node settles, or it was canceled."""
        return self.canceled_at if self.canceled_at is not None else self.start + self.duration

    def status(self, now: float) -> str:
        if self.canceled_at is not None and now >= self.canceled_at:
            return "canceled"
        if now < self.start:
            return "waitingToRun"
        if now < self.start + self.duration:
            return "running"
        return "failed" if self.has_failures else "completed"

    def is_terminal(self, now: float) -> bool:
        return self.status(now) in ("completed", "failed", "canceled")

    def node_states(self, now: float) -> list[NodeState]:
        """Every node that has started or settled by ``now``, upstream first."""
        cancel = (
            self.canceled_at if self.canceled_at is not None and self.canceled_at <= now else None
        )
        states = (self._node_state(plan, now, cancel) for plan in self.nodes)
        return [state for state in states if state is not None]

    def _node_state(self, plan: NodePlan, now: float, cancel: float | None) -> NodeState | None:
        if plan.outcome == "skipped":
            assert plan.skipped_at is not None
            skipped_at = self.start + plan.skipped_at
            if cancel is not None and cancel < skipped_at:
                return NodeState(plan, "canceled", None, None)
            return NodeState(plan, "skipped", None, None) if now >= skipped_at else None
        assert plan.start is not None and plan.end is not None
        start, end = self.start + plan.start, self.start + plan.end
        if cancel is not None and cancel < end:
            if start < cancel:
                return NodeState(plan, "canceled", start, cancel)
            return NodeState(plan, "canceled", None, None)
        if now < start:
            return None
        if now < end:
            return NodeState(plan, "running", start, None)
        return NodeState(plan, plan.outcome, start, end)

    def unfinished_nodes(self, now: float) -> list[str]:
        """The nodes a rerun would run: every node that did not complete."""
        done = {s.plan.node_id for s in self.node_states(now) if s.state == "complete"}
        return [plan.node_id for plan in self.nodes if plan.node_id not in done]
