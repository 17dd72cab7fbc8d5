"""A project's node graph as the simulator uses it: ids, names and dependency edges."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runner.sim.world import JobSpec, ProjectSpec, WorldError

__all__ = ["ProjectGraph", "SimNode", "build_graph"]

_NODE_ID_NAMESPACE = uuid.UUID("9f6f0c1e-3c55-4c43-9a3e-5d0f3e8b2a71")


@dataclass(frozen=True)
class SimNode:
    """One node, with its direct upstream nodes as ids."""

    id: str
    name: str
    location: str
    node_type: str
    subgraphs: tuple[str, ...]
    depends_on: tuple[str, ...]


class ProjectGraph:
    """The nodes and jobs of one project, in topological order.

    ``order`` lists every node id upstream first; among nodes that could go in either
    order, the one declared first in the world file comes first.
    """

    def __init__(self, project_id: str, nodes: Iterable[SimNode], jobs: Iterable[JobSpec]):
        self.project_id = project_id
        self.nodes: dict[str, SimNode] = {node.id: node for node in nodes}
        self.jobs: dict[str, JobSpec] = {job.id: job for job in jobs}
        self.order: list[str] = _topological_order(self.nodes)
        self.position = {node_id: index for index, node_id in enumerate(self.order)}
        self.downstream: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for upstream in node.depends_on:
                self.downstream[upstream].append(node.id)

    def in_order(self, node_ids: Iterable[str]) -> list[str]:
        """``node_ids`` sorted upstream first."""
        return sorted(set(node_ids), key=self.position.__getitem__)


def default_node_id(project_id: str, location: str, name: str) -> str:
    """A stable UUID for a node that the world file gives no id."""
    return str(uuid.uuid5(_NODE_ID_NAMESPACE, f"{project_id}/{location}.{name}"))


def build_graph(project: ProjectSpec) -> ProjectGraph:
    """The graph of ``project``; raise :class:`WorldError` for a dependency that names
    no node, names one ambiguously, or closes a cycle."""
    ids = {
        (spec.location, spec.name): spec.id or default_node_id(project.id, spec.location, spec.name)
        for spec in project.nodes
    }
    nodes = [
        SimNode(
            id=ids[(spec.location, spec.name)],
            name=spec.name,
            location=spec.location,
            node_type=spec.nodeType,
            subgraphs=spec.subgraphs,
            depends_on=tuple(
                dict.fromkeys(
                    _resolve_reference(project, ids, spec.name, ref) for ref in spec.dependsOn
                )
            ),
        )
        for spec in project.nodes
    ]
    return ProjectGraph(project.id, nodes, project.jobs)


def _resolve_reference(
    project: ProjectSpec, ids: Mapping[tuple[str, str], str], node: str, reference: str
) -> str:
    location, dot, name = reference.rpartition(".")
    if dot and (location, name) in ids:
        return ids[(location, name)]
    matches = [node_id for (_, candidate), node_id in ids.items() if candidate == reference]
    if len(matches) == 1:
        return matches[0]
    where = f"project {project.id} ({project.name}), node {node}"
    if not matches:
        raise WorldError(
            f"{where}: dependsOn names {reference!r}, which is not a node of the project.",
            hint="Name an upstream node as NAME or LOCATION.NAME.",
        )
    raise WorldError(
        f"{where}: dependsOn names {reference!r}, which exists in several locations.",
        hint="Write it as LOCATION.NAME.",
    )


def _topological_order(nodes: Mapping[str, SimNode]) -> list[str]:
    declared = {node_id: index for index, node_id in enumerate(nodes)}
    waiting = {node_id: len(node.depends_on) for node_id, node in nodes.items()}
    children: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node in nodes.values():
        for upstream in node.depends_on:
            children[upstream].append(node.id)
    ready = [(declared[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for child in children[node_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (declared[child], child))
    if len(order) < len(nodes):
        stuck = sorted(nodes[n].name for n, count in waiting.items() if count > 0)
        raise WorldError(
            f"the dependencies of these nodes form a cycle: {', '.join(stuck)}",
            hint="A node cannot depend, directly or not, on itself.",
        )
    return order
