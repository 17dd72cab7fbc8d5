"""The one place where the simulator uses the product's selector code."""

from __future__ import annotations

from functools import lru_cache

from runner.selectors import Node, NodeGraph, Selector, parse_selector, resolve
from runner.sim.graph import ProjectGraph

__all__ = ["parse", "select_nodes"]


def parse(text: str) -> Selector:
    """Parse a selector; raises the selector package's ``SelectorError``."""
    return parse_selector(text)


def select_nodes(graph: ProjectGraph, include: str | None, exclude: str | None) -> list[str]:
    """The ids of the nodes a run with these selectors refreshes, upstream first.

    No include selector means every node (minus the excluded ones), as a run without a
    job or selector refreshes the whole environment.
    """
    chosen = resolve(
        parse(include) if include else None,
        parse(exclude) if exclude else None,
        _selector_graph(graph),
    )
    return graph.in_order(chosen)


@lru_cache(maxsize=32)
def _selector_graph(graph: ProjectGraph) -> NodeGraph:
    return NodeGraph(
        [
            Node(
                id=node.id,
                name=node.name,
                location=node.location,
                node_type=node.node_type,
                subgraphs=node.subgraphs,
                depends_on=node.depends_on,
            )
            for node in graph.nodes.values()
        ]
    )
