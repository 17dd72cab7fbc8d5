"""Every documented selector example, resolved against the fixture graph."""

from __future__ import annotations

import pytest

from runner.selectors import NodeGraph, parse_selector, resolve, select
from tests.selectors._fixture import NODES, fixture_graph, labels

ALL = set(labels(node.id for node in NODES))

# (selector text, the nodes it must select)
DOCUMENTED_EXAMPLES = [
    # Documented core syntax (app, API, Jobs)
    ("{name:STG_SUPPLIER}", {"STAGING.STG_SUPPLIER"}),
    ("{nodeID:98}", {"BI.DIM_SUPPLIER"}),
    ("{location:STAGING}", {"STAGING.STG_SUPPLIER", "STAGING.STG_REGION", "STAGING.STG_ORDERS"}),
    ('{nodeType:"Dimension"}', {"BI.DIM_SUPPLIER", "BI.DIM_REGION"}),
    ('{subgraph:"My Dimensions"}', {"BI.DIM_SUPPLIER", "BI.DIM_REGION"}),
    ("{name: *SUPPLIER* location: BI nodeType: Dimension }", {"BI.DIM_SUPPLIER"}),
    (
        "{name:STG_*} OR {name:*REGION}",
        {
            "STAGING.STG_SUPPLIER",
            "STAGING.STG_REGION",
            "STAGING.STG_ORDERS",
            "PROD.STG_PARTSUPP",
            "STG.STG_LINEITEM",
            "SAMPLE.REGION",
            "BI.DIM_REGION",
        },
    ),
    (
        "{ location: SAMPLE name: CUSTOMER } OR { location: SAMPLE name: LINEITEM } OR "
        "{ location: PROD name: STG_PARTSUPP }",
        {"SAMPLE.CUSTOMER", "SAMPLE.LINEITEM", "PROD.STG_PARTSUPP"},
    ),
    # coa >= 7.33 grammar
    ("{ ORDERS }", {"SRC.ORDERS", "MART.ORDERS"}),
    ('{ name: "ORDERS" }', {"SRC.ORDERS", "MART.ORDERS"}),
    ('{ location: "STG" }', {"STG.STG_LINEITEM"}),
    ('{ nodeType: "Work" }', {"MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"}),
    ('{ subgraph: "G" }', {"MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"}),
    ('{ nodeID: "123" }', {"MART.WRK_ORDERS"}),
    ("{ * }", ALL),
    ('{ name: "ORDERS", location: "SRC" }', {"SRC.ORDERS"}),
    ("{ CUSTOMER } || { LINEITEM }", {"SAMPLE.CUSTOMER", "SAMPLE.LINEITEM"}),
    ("{ CUSTOMER } OR { LINEITEM }", {"SAMPLE.CUSTOMER", "SAMPLE.LINEITEM"}),
    ('{ location: "MART" }, { nodeType: "Work" }', {"MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"}),
    ('{ location: "MART" } { nodeType: "Work" }', {"MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"}),
    ('{ location: "MART" } AND { nodeType: "Work" }', {"MART.WRK_ORDERS", "MART.WRK_ORDER_ITEMS"}),
    # Lineage: the chain downstream, the diamond upstream
    (
        "{ WRK_ORDERS }+",
        {
            "MART.WRK_ORDERS",
            "MART.ORDERS",
            "TARGET.ORDERS_SUMMARY",
            "TARGET.ORDERS_REPORT",
            "TARGET.ORDERS_EXPORT",
        },
    ),
    (
        "+{ name: ORDERS location: MART }",
        {
            "MART.ORDERS",
            "MART.WRK_ORDERS",
            "MART.WRK_ORDER_ITEMS",
            "STAGING.STG_ORDERS",
            "SRC.ORDERS",
            "SAMPLE.CUSTOMER",
            "STG.STG_LINEITEM",
            "SAMPLE.LINEITEM",
        },
    ),
    (
        '{ location: "TARGET" }+',
        {"TARGET.ORDERS_SUMMARY", "TARGET.ORDERS_REPORT", "TARGET.ORDERS_EXPORT"},
    ),
    # The in-brace OR that Coalesce resolves to nothing
    ("{ CUSTOMER || LINEITEM }", set()),
    ("{ CUSTOMER OR LINEITEM }", set()),
    # The runner's own spec examples
    ("{ location: STAGING }", {"STAGING.STG_SUPPLIER", "STAGING.STG_REGION", "STAGING.STG_ORDERS"}),
    (
        "{ location: MART name: ORDERS }+",
        {
            "MART.ORDERS",
            "TARGET.ORDERS_SUMMARY",
            "TARGET.ORDERS_REPORT",
            "TARGET.ORDERS_EXPORT",
        },
    ),
    ("{ nodeType: View }", {"TARGET.ORDERS_SUMMARY", "TARGET.ORDERS_REPORT"}),
]

MORE_RULES = [
    # AND binds tighter than OR
    (
        "{ location: SRC } OR { location: BI } AND { name: DIM_R* }",
        {"SRC.ORDERS", "BI.DIM_REGION"},
    ),
    (
        "{ location: BI } { nodeType: Dimension } OR { location: SRC }",
        {"BI.DIM_SUPPLIER", "BI.DIM_REGION", "SRC.ORDERS"},
    ),
    # Case-insensitive values, attribute names and keywords
    ("{ NAME: stg_supplier }", {"STAGING.STG_SUPPLIER"}),
    (
        "{ location: staging } or { LOCATION: Bi } and { nodetype: DIMENSION }",
        ALL
        & {
            "STAGING.STG_SUPPLIER",
            "STAGING.STG_REGION",
            "STAGING.STG_ORDERS",
            "BI.DIM_SUPPLIER",
            "BI.DIM_REGION",
        },
    ),
    ('{ subgraph: "MY DIMENSIONS" }', {"BI.DIM_SUPPLIER", "BI.DIM_REGION"}),
    # '?' is exactly one character; '*' may be empty
    ("{ name: DIM_?EGION }", {"BI.DIM_REGION"}),
    ("{ name: DIM_?REGION }", set()),
    (
        "{ name: ORDERS* location: TARGET }",
        {
            "TARGET.ORDERS_SUMMARY",
            "TARGET.ORDERS_REPORT",
            "TARGET.ORDERS_EXPORT",
        },
    ),
    ("{ name: *ORDERS }", {"SRC.ORDERS", "STAGING.STG_ORDERS", "MART.WRK_ORDERS", "MART.ORDERS"}),
    ("{ name: STG*S*P* }", {"STAGING.STG_SUPPLIER", "PROD.STG_PARTSUPP"}),
    # Other glob characters are literal
    ("{ name: STG_[OR]* }", set()),
    # Both directions, and a diamond reached twice counted once
    (
        "+{ STG_ORDERS }+",
        {
            "SRC.ORDERS",
            "STAGING.STG_ORDERS",
            "MART.WRK_ORDERS",
            "MART.WRK_ORDER_ITEMS",
            "MART.ORDERS",
            "TARGET.ORDERS_SUMMARY",
            "TARGET.ORDERS_REPORT",
            "TARGET.ORDERS_EXPORT",
        },
    ),
    # Lineage is expanded per term, before intersecting
    (
        "{ STG_ORDERS }+ AND { location: TARGET }",
        {
            "TARGET.ORDERS_SUMMARY",
            "TARGET.ORDERS_REPORT",
            "TARGET.ORDERS_EXPORT",
        },
    ),
    # A node with no subgraph matches no subgraph pattern, not even '*'
    (
        "{ subgraph: * }",
        {
            "BI.DIM_SUPPLIER",
            "BI.DIM_REGION",
            "MART.WRK_ORDERS",
            "MART.WRK_ORDER_ITEMS",
        },
    ),
    ("{ name: * }", ALL),
    ("{ name: NOPE }", set()),
    ("{ name: NOPE* }", set()),
    ("{ CUSTOMER || LINEITEM } OR { REGION }", {"SAMPLE.REGION"}),
]


@pytest.mark.parametrize(("text", "expected"), DOCUMENTED_EXAMPLES + MORE_RULES)
def test_selects_the_expected_nodes(text: str, expected: set[str]) -> None:
    graph = fixture_graph()
    assert set(labels(select(parse_selector(text), graph))) == expected


def test_resolve_lists_nodes_in_dependency_order() -> None:
    include = parse_selector("+{ name: ORDERS location: MART }")
    assert labels(resolve(include, None, fixture_graph())) == [
        "SAMPLE.CUSTOMER",
        "SAMPLE.LINEITEM",
        "SRC.ORDERS",
        "STG.STG_LINEITEM",
        "STAGING.STG_ORDERS",
        "MART.WRK_ORDERS",
        "MART.WRK_ORDER_ITEMS",
        "MART.ORDERS",
    ]


def test_resolve_takes_out_the_excluded_nodes() -> None:
    include = parse_selector("{ location: MART name: ORDERS }+")
    exclude = parse_selector("{ nodeType: View }")
    assert labels(resolve(include, exclude, fixture_graph())) == [
        "MART.ORDERS",
        "TARGET.ORDERS_EXPORT",
    ]


def test_an_exclude_selector_expands_its_own_lineage() -> None:
    exclude = parse_selector("{ STG_ORDERS }+ OR +{ DIM_SUPPLIER }")
    assert labels(resolve(None, exclude, fixture_graph())) == [
        "SAMPLE.CUSTOMER",
        "SAMPLE.LINEITEM",
        "SRC.ORDERS",
        "STG.STG_LINEITEM",
        "BI.DIM_REGION",
        "PROD.STG_PARTSUPP",
    ]


def test_without_selectors_every_node_is_refreshed() -> None:
    graph = fixture_graph()
    assert resolve(None, None, graph) == list(graph.order)
    assert len(graph.order) == len(NODES)


def test_an_empty_graph_resolves_to_nothing() -> None:
    graph = NodeGraph([])
    assert resolve(parse_selector("{ * }+"), None, graph) == []
    assert resolve(None, None, graph) == []


def test_results_do_not_depend_on_what_was_resolved_before() -> None:
    graph = fixture_graph()
    texts = [text for text, _ in DOCUMENTED_EXAMPLES + MORE_RULES]
    first = [select(parse_selector(text), graph) for text in texts]
    again = [select(parse_selector(text), graph) for text in reversed(texts)]
    assert again[::-1] == first
