from __future__ import annotations

import pytest

from runner.coalesce import (
    TERMINAL_STATUSES,
    EnvironmentNode,
    ErrorBody,
    NodeKey,
    Page,
    RunInfo,
    RunResult,
    RunStatusResponse,
    RunSummary,
    dependency_edges,
    is_terminal,
)


@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_the_three_end_states_are_terminal(status: str) -> None:
    assert is_terminal(status)
    assert status in TERMINAL_STATUSES


@pytest.mark.parametrize(
    "status",
    [
        "waitingToRun",
        "running",
        "initializing",
        "rendering",
        "queued",
        "cancelled",
        "",
        "Completed",
    ],
)
def test_every_other_status_is_still_running(status: str) -> None:
    assert not is_terminal(status)


def test_unknown_fields_are_kept_not_rejected() -> None:
    status = RunStatusResponse.model_validate(
        {"runStatus": "paused", "runType": "refresh", "runLink": "x", "queuePosition": 3}
    )
    assert status.runStatus == "paused"
    assert not status.terminal
    assert status.to_wire()["queuePosition"] == 3


def test_run_info_reads_the_response_names_and_new_fields() -> None:
    info = RunInfo.model_validate(
        {
            "id": "42",
            "runStatus": "failed",
            "runDetails": {
                "environmentID": 4,
                "jobID": 7,
                "forceIgnoreEnvironmentStatus": True,
                "includeNodesSelector": "{ location: STAGING }",
                "parallelism": 8,
                "somethingNew": {"a": 1},
            },
            "runTimeParameters": {"region": "emea"},
            "userCredentials": {"authType": "KeyPair"},
        }
    )
    assert info.id == 42
    assert info.runDetails is not None
    assert info.runDetails.environmentID == "4"
    assert info.runDetails.jobID == "7"
    assert info.runDetails.forceIgnoreEnvironmentStatus is True
    assert info.runTimeParameters == {"region": "emea"}


def test_page_envelope_normalises_cursors_and_parses_items() -> None:
    page = Page[RunSummary].model_validate(
        {"data": [{"id": 3, "runStatus": "running", "environmentID": "4"}], "next": 3, "total": 9}
    )
    assert page.next == "3"
    assert page.data[0].environmentID == "4"


def test_error_body_with_an_object_detail_keeps_its_text() -> None:
    body = ErrorBody.model_validate(
        {"error": {"errorString": "bad", "errorDetail": {"field": "x"}}}
    )
    assert body.error.errorDetail == '{"field": "x"}'


def test_run_result_lists_the_failed_queries() -> None:
    result = RunResult.model_validate(
        {
            "nodeID": "n1",
            "name": "STG_ORDERS",
            "queryResults": [
                {"name": "create", "success": True},
                {"name": "insert", "success": False, "error": {"errorString": "SQL compilation"}},
            ],
        }
    )
    assert [q.name for q in result.failed_queries] == ["insert"]


def _node(name: str, location: str, *deps: tuple[str, str]) -> EnvironmentNode:
    return EnvironmentNode.model_validate(
        {
            "id": name.lower(),
            "name": name,
            "locationName": location,
            "nodeType": "Stage",
            "schema": "PUBLIC",
            "metadata": {
                "sourceMapping": [
                    {"dependencies": [{"locationName": loc, "nodeName": n} for loc, n in deps]},
                    {"dependencies": [{"locationName": loc, "nodeName": n} for loc, n in deps]},
                ]
            },
        }
    )


def test_nodes_turn_into_dependency_edges_without_repeats() -> None:
    orders = _node("STG_ORDERS", "STAGING", ("SRC", "ORDERS"))
    mart = _node("FCT_ORDERS", "MART", ("STAGING", "STG_ORDERS"), ("SRC", "CUSTOMERS"))
    edges = dependency_edges([orders, mart])
    assert [(e.upstream, e.downstream) for e in edges] == [
        (NodeKey("SRC", "ORDERS"), NodeKey("STAGING", "STG_ORDERS")),
        (NodeKey("STAGING", "STG_ORDERS"), NodeKey("MART", "FCT_ORDERS")),
        (NodeKey("SRC", "CUSTOMERS"), NodeKey("MART", "FCT_ORDERS")),
    ]


def test_node_schema_round_trips_under_its_wire_name() -> None:
    node = EnvironmentNode.model_validate({"id": 1, "name": "A", "schema": "RAW"})
    assert node.schema_ == "RAW"
    assert node.dependencies == []
    assert node.to_wire() == {"id": "1", "name": "A", "locationName": "", "schema": "RAW"}
