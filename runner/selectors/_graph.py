"""Nodes and their dependencies, indexed once so that many selectors resolve quickly.

Inside a ``NodeGraph`` a set of nodes is an ``int`` used as a bit set: bit ``i`` is the
``i``-th node in topological order. Unions, intersections and differences are then single
integer operations, and reading the set bits from low to high gives the nodes in
dependency order for free.

Dependencies that form a cycle do not stop the graph from being built: the nodes of each
cycle are kept together in the order (sorted by name, then id) and reported in
``NodeGraph.cycles``, and each counts as upstream of the others.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, reduce
from itertools import compress
from operator import or_
from typing import TypeVar

from runner.selectors._errors import GraphError
from runner.selectors._glob import Glob
from runner.selectors._tree import Attribute


@dataclass(frozen=True)
class Node:
    """One node of an environment; ``depends_on`` holds the ids of its direct upstream nodes."""

    id: str
    name: str
    location: str
    node_type: str
    subgraphs: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()

    def values(self, attribute: Attribute) -> tuple[str, ...]:
        """What a condition on ``attribute`` is tested against (any one may match)."""
        if attribute is Attribute.SUBGRAPH:
            return self.subgraphs
        if attribute is Attribute.NAME:
            return (self.name,)
        if attribute is Attribute.LOCATION:
            return (self.location,)
        if attribute is Attribute.NODE_TYPE:
            return (self.node_type,)
        return (self.id,)


class NodeGraph:
    """The nodes of one environment, in a stable topological order.

    Ties in the order (nodes that could come in either order) are broken by name, then
    id, so the same nodes always give the same order. Dependencies on ids that are not
    among the nodes are left out and listed in ``unknown_dependencies``.

    The methods under "bit sets" serve the resolver; other code calls ``resolve`` or
    ``select``.
    """

    def __init__(self, nodes: Iterable[Node], unknown: Iterable[Attribute] = ()) -> None:
        #: Attributes the nodes were built without (what the source does not report):
        #: a selector testing one of them cannot be resolved here.
        self.unknown_attributes = frozenset(unknown)
        by_key = sorted(nodes, key=lambda node: (node.name, node.id))
        _reject_duplicate_ids(by_key)
        ranks = {node.id: rank for rank, node in enumerate(by_key)}
        self.unknown_dependencies: tuple[tuple[str, str], ...] = tuple(
            (node.id, dep) for node in by_key for dep in node.depends_on if dep not in ranks
        )
        parents = [
            tuple(dict.fromkeys(ranks[dep] for dep in node.depends_on if dep in ranks))
            for node in by_key
        ]
        components = _ordered_components(parents)
        order = [rank for component in components for rank in component]
        position = {rank: pos for pos, rank in enumerate(order)}

        self.nodes: tuple[Node, ...] = tuple(by_key[rank] for rank in order)
        self.order: tuple[str, ...] = tuple(node.id for node in self.nodes)
        self._position = {node.id: pos for pos, node in enumerate(self.nodes)}
        self._parents = [tuple(sorted(position[p] for p in parents[rank])) for rank in order]
        self._children = _reverse(self._parents)
        self._components = [tuple(position[rank] for rank in c) for c in components]
        self.cycles: tuple[tuple[str, ...], ...] = tuple(
            tuple(self.order[pos] for pos in component)
            for component in self._components
            if len(component) > 1 or component[0] in self._parents[component[0]]
        )
        self.all_bits = (1 << len(self.nodes)) - 1
        self._value_indexes: dict[Attribute, _ValueIndex] = {}
        self._memo: dict[Hashable, int] = {}

    # ------------------------------------------------------------------ plain queries

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._position

    def node(self, node_id: str) -> Node:
        """The node with id ``node_id``; ``KeyError`` if there is none."""
        return self.nodes[self._position[node_id]]

    def upstream(self, node_id: str) -> tuple[str, ...]:
        """The ids of the nodes ``node_id`` depends on directly, in topological order."""
        return tuple(self.order[pos] for pos in self._parents[self._position[node_id]])

    def downstream(self, node_id: str) -> tuple[str, ...]:
        """The ids of the nodes that depend directly on ``node_id``, in topological order."""
        return tuple(self.order[pos] for pos in self._children[self._position[node_id]])

    # ------------------------------------------------------------------ bit sets

    def ids(self, bits: int) -> list[str]:
        """The ids of the nodes in ``bits``, in topological order."""
        return list(_members(self.order, bits))

    def matching(self, attribute: Attribute, glob: Glob) -> int:
        """The nodes with a value of ``attribute`` that ``glob`` matches."""
        return self.remember(
            (attribute, glob.pattern), lambda: self._value_index(attribute).matching(glob)
        )

    def remember(self, key: Hashable, compute: Callable[[], int]) -> int:
        """``compute()``, worked out once per ``key`` for the life of this graph."""
        found = self._memo.get(key)
        if found is None:
            found = compute()
            if len(self._memo) >= _MEMO_LIMIT:  # a long-lived graph must not grow forever
                self._memo.clear()
            self._memo[key] = found
        return found

    def with_lineage(self, bits: int, *, upstream: bool, downstream: bool) -> int:
        """``bits`` plus all their upstream and/or downstream nodes."""
        result = bits
        if upstream or downstream:
            for pos in _members(range(len(self.nodes)), bits):
                if upstream:
                    result |= self._ancestors[pos]
                if downstream:
                    result |= self._descendants[pos]
        return result

    def _value_index(self, attribute: Attribute) -> _ValueIndex:
        index = self._value_indexes.get(attribute)
        if index is None:
            index = _ValueIndex(node.values(attribute) for node in self.nodes)
            self._value_indexes[attribute] = index
        return index

    @cached_property
    def _ancestors(self) -> list[int]:
        return _closures(self._components, self._parents)

    @cached_property
    def _descendants(self) -> list[int]:
        return _closures(self._components[::-1], self._children)


_MEMO_LIMIT = 100_000


def _reject_duplicate_ids(nodes: list[Node]) -> None:
    seen: dict[str, Node] = {}
    for node in nodes:
        other = seen.get(node.id)
        if other is not None:
            raise GraphError(
                f"two nodes have the id '{node.id}' ('{other.name}' and '{node.name}'): "
                "node ids must be unique within an environment"
            )
        seen[node.id] = node


def _reverse(parents: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    children: list[list[int]] = [[] for _ in parents]
    for child, ups in enumerate(parents):
        for parent in ups:
            children[parent].append(child)
    return [tuple(kids) for kids in children]


_T = TypeVar("_T")
_ZEROS_AND_ONES = bytes.maketrans(b"01", b"\x00\x01")


def _members(items: Sequence[_T], bits: int) -> Iterator[_T]:
    """The items whose bit is set in ``bits``, lowest bit first."""
    digits = bin(bits)[:1:-1]  # least significant first, without "0b"
    if bits.bit_count() * 16 > len(digits):
        # Dense: let C walk every digit rather than Python every set bit.
        return compress(items, digits.encode("ascii").translate(_ZEROS_AND_ONES))
    return _sparse_members(items, digits)


def _sparse_members(items: Sequence[_T], digits: str) -> Iterator[_T]:
    pos = digits.find("1")
    while pos >= 0:
        yield items[pos]
        pos = digits.find("1", pos + 1)


def _ordered_components(parents: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Strongly connected components in topological order (Kahn's algorithm).

    Nodes are numbered by (name, id); a component's members are listed in that order,
    and among components ready at the same time the one with the lowest member goes first.
    """
    components = _strongly_connected(parents)
    component_of = [0] * len(parents)
    for number, members in enumerate(components):
        for member in members:
            component_of[member] = number
    waiting_on = [0] * len(components)
    feeds: list[set[int]] = [set() for _ in components]
    for child, ups in enumerate(parents):
        for parent in ups:
            source, target = component_of[parent], component_of[child]
            if source != target and target not in feeds[source]:
                feeds[source].add(target)
                waiting_on[target] += 1
    ready = [
        (members[0], number) for number, members in enumerate(components) if not waiting_on[number]
    ]
    heapq.heapify(ready)
    ordered: list[tuple[int, ...]] = []
    while ready:
        _, number = heapq.heappop(ready)
        ordered.append(components[number])
        for target in feeds[number]:
            waiting_on[target] -= 1
            if not waiting_on[target]:
                heapq.heappush(ready, (components[target][0], target))
    return ordered


def _strongly_connected(parents: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Tarjan's algorithm without recursion (a long chain must not hit the stack limit)."""
    count = len(parents)
    index = [-1] * count
    low = [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    components: list[tuple[int, ...]] = []
    counter = 0
    for root in range(count):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            node, next_edge = work[-1]
            edges = parents[node]
            if next_edge < len(edges):
                work[-1] = (node, next_edge + 1)
                other = edges[next_edge]
                if index[other] < 0:
                    index[other] = low[other] = counter
                    counter += 1
                    stack.append(other)
                    on_stack[other] = True
                    work.append((other, 0))
                elif on_stack[other]:
                    low[node] = min(low[node], index[other])
                continue
            work.pop()
            if work:
                caller = work[-1][0]
                low[caller] = min(low[caller], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    members.append(member)
                    if member == node:
                        break
                components.append(tuple(sorted(members)))
    return components


def _closures(components: list[tuple[int, ...]], edges: list[tuple[int, ...]]) -> list[int]:
    """For each node, the bits of every node reachable along ``edges`` (itself excluded
    unless it is on a cycle). ``components`` must list each component after those its
    edges point to."""
    reach = [0] * len(edges)
    for members in components:
        inside = reduce(or_, (1 << pos for pos in members), 0)
        outside = 0
        for pos in members:
            for other in edges[pos]:
                if not inside >> other & 1:
                    outside |= reach[other] | 1 << other
        cyclic = len(members) > 1 or members[0] in edges[members[0]]
        shared = outside | inside if cyclic else outside
        for pos in members:
            reach[pos] = shared
    return reach


class _ValueIndex:
    """The nodes of every distinct (lowercased) value of one attribute."""

    def __init__(self, values_per_node: Iterable[tuple[str, ...]]) -> None:
        exact: dict[str, int] = {}
        for pos, values in enumerate(values_per_node):
            bit = 1 << pos
            for value in values:
                lowered = value.lower()
                exact[lowered] = exact.get(lowered, 0) | bit
        self._exact = exact
        self._forward = sorted(exact)
        self._backward = sorted(value[::-1] for value in exact)
        self._any = reduce(or_, exact.values(), 0)

    def matching(self, glob: Glob) -> int:
        if glob.literal:
            return self._exact.get(glob.pattern, 0)
        if glob.matches_everything:
            return self._any
        candidates = self._candidates(glob)
        if glob.regex is not None:
            candidates = list(filter(glob.regex.fullmatch, candidates))
        return reduce(or_, (self._exact[value] for value in candidates), 0)

    def _candidates(self, glob: Glob) -> list[str]:
        """The values that can match: those with the glob's literal prefix or suffix."""
        if len(glob.prefix) >= len(glob.suffix):
            return _with_prefix(self._forward, glob.prefix)
        return [value[::-1] for value in _with_prefix(self._backward, glob.suffix[::-1])]


def _with_prefix(ordered: list[str], prefix: str) -> list[str]:
    if not prefix:
        return ordered
    start = bisect_left(ordered, prefix)
    end = start
    while end < len(ordered) and ordered[end].startswith(prefix):
        end += 1
    return ordered[start:end]
