"""The schedule of a run, computed once when the run is created.

A run executes its nodes upstream first, at most ``parallelism`` at a time. Whenever a
slot is free, the ready node that comes first in topological order starts. A node is
ready when every upstream node *in the run* has completed; upstream nodes outside the
run are taken as already built. When a node fails, every node downstream of it in the
run is skipped at that moment and never starts.

Times here are offsets in seconds from the moment the run starts running.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["NodeFailure", "NodePlan", "plan_nodes"]

Outcome = Literal["complete", "failed", "skipped"]


@dataclass(frozen=True)
class NodeFailure:
    """The error a node fails with."""

    error: str
    detail: str | None = None


@dataclass(frozen=True)
class NodePlan:
    """What will happen to one node.

    A node that runs has ``start`` and ``end``; a skipped one has ``skipped_at`` (when
    its upstream failed) and ``blocked_by`` (the failed node).
    """

    node_id: str
    outcome: Outcome
    start: float | None = None
    end: float | None = None
    skipped_at: float | None = None
    blocked_by: str | None = None
    failure: NodeFailure | None = None

    @property
    def settled_at(self) -> float:
        """When the node's outcome is known."""
        if self.end is not None:
            return self.end
        return self.skipped_at if self.skipped_at is not None else 0.0


def plan_nodes(
    order: Sequence[str],
    upstream: Mapping[str, Sequence[str]],
    durations: Mapping[str, float],
    failures: Mapping[str, NodeFailure],
    parallelism: int,
) -> list[NodePlan]:
    """The plan of every node of ``order`` (which must be topological), in that order."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be at least 1, not {parallelism}")
    planner = _Planner(order, upstream, durations, failures, parallelism)
    planner.run()
    return [planner.plans[node_id] for node_id in order]


class _Planner:
    def __init__(
        self,
        order: Sequence[str],
        upstream: Mapping[str, Sequence[str]],
        durations: Mapping[str, float],
        failures: Mapping[str, NodeFailure],
        parallelism: int,
    ) -> None:
        self.rank = {node_id: index for index, node_id in enumerate(order)}
        self.durations = durations
        self.failures = failures
        self.parallelism = parallelism
        self.children: dict[str, list[str]] = {node_id: [] for node_id in order}
        self.waiting_on: dict[str, int] = {}
        for node_id in order:
            inside = [u for u in dict.fromkeys(upstream.get(node_id, ())) if u in self.rank]
            self.waiting_on[node_id] = len(inside)
            for parent in inside:
                self.children[parent].append(node_id)
        self.ready = [(self.rank[n], n) for n in order if self.waiting_on[n] == 0]
        heapq.heapify(self.ready)
        self.running: list[tuple[float, int, str]] = []
        self.plans: dict[str, NodePlan] = {}
        self.starts: dict[str, float] = {}

    def run(self) -> None:
        now = 0.0
        while True:
            self._start_ready(now)
            if not self.running:
                return
            now = self.running[0][0]
            while self.running and self.running[0][0] == now:
                _, _, node_id = heapq.heappop(self.running)
                self._finish(node_id, now)

    def _start_ready(self, now: float) -> None:
        while self.ready and len(self.running) < self.parallelism:
            _, node_id = heapq.heappop(self.ready)
            self.starts[node_id] = now
            end = now + max(0.0, self.durations.get(node_id, 0.0))
            heapq.heappush(self.running, (end, self.rank[node_id], node_id))

    def _finish(self, node_id: str, now: float) -> None:
        failure = self.failures.get(node_id)
        start = self.starts[node_id]
        if failure is not None:
            self.plans[node_id] = NodePlan(node_id, "failed", start, now, failure=failure)
            self._skip_downstream(node_id, now)
            return
        self.plans[node_id] = NodePlan(node_id, "complete", start, now)
        for child in self.children[node_id]:
            self.waiting_on[child] -= 1
            if self.waiting_on[child] == 0 and child not in self.plans:
                heapq.heappush(self.ready, (self.rank[child], child))

    def _skip_downstream(self, failed: str, now: float) -> None:
        pending = list(self.children[failed])
        while pending:
            node_id = pending.pop()
            if node_id in self.plans:
                continue  # already skipped because of an earlier failure
            self.plans[node_id] = NodePlan(node_id, "skipped", skipped_at=now, blocked_by=failed)
            pending.extend(self.children[node_id])
