"""The failed nodes of a run, with their errors, from ``/api/v1/runs/{id}/results``."""

from __future__ import annotations

from collections.abc import Sequence

from runner.apply.model import FailedNode
from runner.coalesce import RunResult
from runner.secrets import foreign_name, foreign_text

FAILED_STATES = ("failed", "error", "errored")


def failed_nodes(results: Sequence[RunResult]) -> list[FailedNode]:
    nodes: list[FailedNode] = []
    for result in results:
        queries = result.failed_queries
        state = (result.runState or "").lower()
        if not queries and state not in FAILED_STATES:
            continue
        # The node's id and name are Coalesce's text too.
        node_id, name = foreign_name(result.nodeID), foreign_name(result.name)
        nodes.append(FailedNode(node_id, name, _error_text(result)))
    return nodes


def _error_text(result: RunResult) -> str:
    for query in result.failed_queries:
        if query.error is not None:
            detail = f": {query.error.errorDetail}" if query.error.errorDetail else ""
            # Coalesce's (and Snowflake's) text: shown only if it holds no secret.
            return foreign_text(
                f"{query.error.errorString}{detail}", context="Coalesce's error text"
            )
    return f"node {foreign_name(result.runState, limit=40) or 'failed'}"
