"""A small environment with a diamond and a chain, used to check resolution by hand.

Diamond: STAGING.STG_ORDERS feeds MART.WRK_ORDERS and MART.WRK_ORDER_ITEMS, which both
feed MART.ORDERS. Chain: MART.ORDERS -> TARGET.ORDERS_SUMMARY -> TARGET.ORDERS_REPORT ->
TARGET.ORDERS_EXPORT. WRK_ORDERS also reads SAMPLE.CUSTOMER, WRK_ORDER_ITEMS reads
STG.STG_LINEITEM, and BI.DIM_SUPPLIER reads two staging nodes.

Nodes are named ``LOCATION.NAME`` in expectations, since ORDERS exists in two locations.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.selectors import Node, NodeGraph

NODES = (
    Node("1", "CUSTOMER", "SAMPLE", "Source"),
    Node("2", "LINEITEM", "SAMPLE", "Source"),
    Node("3", "ORDERS", "SRC", "Source"),
    Node("4", "SUPPLIER", "SAMPLE", "Source"),
    Node("5", "REGION", "SAMPLE", "Source"),
    Node("10", "STG_SUPPLIER", "STAGING", "Stage", depends_on=("4",)),
    Node("11", "STG_REGION", "STAGING", "Stage", depends_on=("5",)),
    Node("12", "STG_ORDERS", "STAGING", "Stage", depends_on=("3",)),
    Node("13", "STG_PARTSUPP", "PROD", "Stage", depends_on=("4",)),
    Node("14", "STG_LINEITEM", "STG", "Stage", depends_on=("2",)),
    Node("98", "DIM_SUPPLIER", "BI", "Dimension", ("My Dimensions",), ("10", "11")),
    Node("21", "DIM_REGION", "BI", "Dimension", ("My Dimensions",), ("11",)),
    Node("123", "WRK_ORDERS", "MART", "Work", ("G",), ("12", "1")),
    Node("31", "WRK_ORDER_ITEMS", "MART", "Work", ("G",), ("12", "14")),
    Node("40", "ORDERS", "MART", "Fact", depends_on=("123", "31")),
    Node("41", "ORDERS_SUMMARY", "TARGET", "View", depends_on=("40",)),
    Node("42", "ORDERS_REPORT", "TARGET", "View", depends_on=("41",)),
    Node("43", "ORDERS_EXPORT", "TARGET", "Export", depends_on=("42",)),
)

_LABELS = {node.id: f"{node.location}.{node.name}" for node in NODES}


def fixture_graph() -> NodeGraph:
    return NodeGraph(NODES)


def labels(ids: Iterable[str]) -> list[str]:
    """``LOCATION.NAME`` of each id, in the given order."""
    return [_LABELS[node_id] for node_id in ids]
