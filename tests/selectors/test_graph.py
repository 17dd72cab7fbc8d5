"""The node graph: a stable topological order, cycles, and odd inputs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.selectors import GraphError, Node, NodeGraph, parse_selector, resolve, select
from tests.selectors._fixture import fixture_graph, labels


def node(node_id: str, *depends_on: str, name: str = "") -> Node:
    return Node(node_id, name or node_id, "LOC", "Stage", depends_on=depends_on)


def test_order_is_topological_with_ties_broken_by_name_then_id() -> None:
    assert labels(fixture_graph().order) == [
        "SAMPLE.CUSTOMER",
        "SAMPLE.LINEITEM",
        "SRC.ORDERS",
        "SAMPLE.REGION",
        "STG.STG_LINEITEM",
        "STAGING.STG_ORDERS",
        "STAGING.STG_REGION",
        "BI.DIM_REGION",
        "SAMPLE.SUPPLIER",
        "PROD.STG_PARTSUPP",
        "STAGING.STG_SUPPLIER",
        "BI.DIM_SUPPLIER",
        "MART.WRK_ORDERS",
        "MART.WRK_ORDER_ITEMS",
        "MART.ORDERS",
        "TARGET.ORDERS_SUMMARY",
        "TARGET.ORDERS_REPORT",
        "TARGET.ORDERS_EXPORT",
    ]


def test_order_does_not_depend_on_the_input_order() -> None:
    nodes = list(fixture_graph().nodes)
    random.Random(7).shuffle(nodes)
    assert NodeGraph(nodes).order == fixture_graph().order


def test_same_names_are_ordered_by_id() -> None:
    graph = NodeGraph([node("b", name="X"), node("a", name="X"), node("c", name="W")])
    assert graph.order == ("c", "a", "b")


def test_direct_neighbours() -> None:
    graph = fixture_graph()
    assert labels(graph.upstream("40")) == ["MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"]
    assert labels(graph.downstream("12")) == ["MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"]
    assert graph.upstream("1") == ()
    assert graph.node("98").name == "DIM_SUPPLIER"
    assert "98" in graph
    assert "99" not in graph
    assert len(graph) == 18


def test_a_cycle_is_reported_and_its_nodes_count_as_upstream_of_each_other() -> None:
    graph = NodeGraph(
        [
            node("src"),
            node("a", "src", "b"),
            node("b", "a"),
            node("after", "b"),
            node("loner"),
        ]
    )
    assert graph.cycles == (("a", "b"),)
    assert graph.order == ("loner", "src", "a", "b", "after")
    assert select(parse_selector("+{ after }"), graph) == {"after", "b", "a", "src"}
    assert select(parse_selector("{ a }+"), graph) == {"a", "b", "after"}
    assert select(parse_selector("+{ a }"), graph) == {"a", "b", "src"}


def test_a_node_depending_on_itself_is_a_cycle() -> None:
    graph = NodeGraph([node("a", "a"), node("b", "a")])
    assert graph.cycles == (("a",),)
    assert graph.order == ("a", "b")
    assert select(parse_selector("+{ b }"), graph) == {"a", "b"}


def test_dependencies_on_unknown_nodes_are_listed_and_ignored() -> None:
    graph = NodeGraph([node("a", "ghost"), node("b", "a")])
    assert graph.unknown_dependencies == (("a", "ghost"),)
    assert graph.order == ("a", "b")
    assert graph.upstream("a") == ()


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(GraphError) as caught:
        NodeGraph([node("7", name="A"), node("7", name="B")])
    assert caught.value.message == (
        "two nodes have the id '7' ('A' and 'B'): node ids must be unique within an environment"
    )


def test_the_same_node_twice_is_a_duplicate_too() -> None:
    same = node("7", name="A")
    with pytest.raises(GraphError, match="two nodes have the id '7'"):
        NodeGraph([same, same])


def test_a_long_chain_does_not_exhaust_the_stack() -> None:
    count = 5_000
    graph = NodeGraph(
        [node(f"n{i:05d}", *([f"n{i - 1:05d}"] if i else [])) for i in range(count)][::-1]
    )
    assert graph.order[0] == "n00000"
    assert len(resolve(parse_selector("+{ n04999 }"), None, graph)) == count


def test_a_long_cycle_does_not_hang() -> None:
    count = 2_000
    graph = NodeGraph([node(f"n{i:05d}", f"n{(i + 1) % count:05d}") for i in range(count)])
    assert len(graph.cycles) == 1
    assert len(select(parse_selector("{ n00000 }+"), graph)) == count


@st.composite
def random_graphs(draw: st.DrawFn) -> list[Node]:
    """Nodes with random dependencies, cycles and missing ids included."""
    count = draw(st.integers(0, 12))
    ids = [f"n{i}" for i in range(count)]
    return [
        Node(
            node_id,
            draw(st.sampled_from(["A", "B", "C"])),
            "L",
            "T",
            depends_on=tuple(draw(st.lists(st.sampled_from([*ids, "ghost"]), max_size=3))),
        )
        for node_id in ids
    ]


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for other in edges[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return seen


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_order_and_lineage_agree_with_a_plain_search(nodes: list[Node]) -> None:
    graph = NodeGraph(nodes)
    ids = {n.id for n in nodes}
    parents = {n.id: set(n.depends_on) & ids for n in nodes}
    children: dict[str, set[str]] = {n.id: set() for n in nodes}
    for child, ups in parents.items():
        for parent in ups:
            children[parent].add(child)
    in_cycle = {node_id for cycle in graph.cycles for node_id in cycle}
    position = {node_id: pos for pos, node_id in enumerate(graph.order)}
    assert sorted(graph.order) == sorted(ids)
    for child, ups in parents.items():
        for parent in ups:
            assert position[parent] < position[child] or {parent, child} <= in_cycle
    for node_id in ids:
        term = f"{{ nodeID: {node_id} }}"
        assert select(parse_selector("+" + term), graph) == _reachable(node_id, parents)
        assert select(parse_selector(term + "+"), graph) == _reachable(node_id, children)
