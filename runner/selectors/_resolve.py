"""Which nodes a selector picks, read the way Coalesce reads it.

A term selects the nodes matching all its conditions, then adds their upstream or
downstream nodes when it has a ``+``. An in-brace OR (``{ A || B }``) selects nothing,
as in Coalesce. Intersections and unions combine what the terms selected, so lineage is
expanded per term before they are combined: ``{a}+ AND {b}`` is "b, if it is a or
downstream of a".
"""

from __future__ import annotations

from functools import reduce
from operator import and_, or_

from runner.selectors._glob import compile_glob
from runner.selectors._graph import NodeGraph
from runner.selectors._tree import Atom, Selector, Term


def select(tree: Selector, graph: NodeGraph) -> set[str]:
    """The ids of the nodes ``tree`` selects."""
    return set(graph.ids(_selected(tree, graph)))


def resolve(include: Selector | None, exclude: Selector | None, graph: NodeGraph) -> list[str]:
    """The ids of the nodes a run refreshes, in topological order.

    Without ``include`` every node is included; the nodes ``exclude`` selects (lineage
    included) are then taken out.
    """
    bits = graph.all_bits if include is None else _selected(include, graph)
    if exclude is not None:
        bits &= ~_selected(exclude, graph)
    return graph.ids(bits)


def _selected(tree: Selector, graph: NodeGraph) -> int:
    return reduce(
        or_,
        (
            reduce(and_, (_atom(atom, graph) for atom in conjunction.terms))
            for conjunction in tree.alternatives
        ),
    )


def _atom(atom: Atom, graph: NodeGraph) -> int:
    if not isinstance(atom, Term):
        return 0  # Coalesce matches no node with an OR inside one brace pair
    return graph.remember(atom, lambda: _term(atom, graph))


def _term(term: Term, graph: NodeGraph) -> int:
    bits = graph.all_bits
    for condition in term.conditions:
        bits &= graph.matching(condition.attribute, compile_glob(condition.pattern))
        if not bits:
            return 0
    return graph.with_lineage(bits, upstream=term.upstream, downstream=term.downstream)
