"""The failed nodes of a run, with their errors, from ``/api/v1/runs/{id}/results``, and
after them the nodes Coalesce skipped because a node upstream of them failed.

A node result says it was skipped by its ``runState`` (``skipped``); a Coalesce that
does not send ``runState`` says it by the node's queries, each with status ``Skipped``
(and an error such as "Skipped because upstream node X failed")."""

from __future__ import annotations

from collections.abc import Sequence

from runner.apply.model import FailedNode
from runner.coalesce import RunResult
from runner.secrets import foreign_name, foreign_text

FAILED_STATES = ("failed", "error", "errored")
SKIPPED_STATE = "skipped"


def failed_nodes(results: Sequence[RunResult]) -> list[FailedNode]:
    """The nodes that failed, then those skipped because of them (each in Coalesce's order)."""
    failed: list[FailedNode] = []
    skipped: list[FailedNode] = []
    for result in results:
        queries = result.failed_queries
        state = (result.runState or "").lower()
        if not queries and state not in FAILED_STATES and state != SKIPPED_STATE:
            continue
        # The node's id and name are Coalesce's text too.
        node_id, name = foreign_name(result.nodeID), foreign_name(result.name)
        if _skipped(result):
            skipped.append(FailedNode(node_id, name, _error_text(result), skipped=True))
        else:
            failed.append(FailedNode(node_id, name, _error_text(result)))
    return failed + skipped


def _skipped(result: RunResult) -> bool:
    state = (result.runState or "").lower()
    if state:
        return state == SKIPPED_STATE
    queries = result.failed_queries
    return bool(queries) and all((q.status or "").lower() == SKIPPED_STATE for q in queries)


def _error_text(result: RunResult) -> str:
    for query in result.failed_queries:
        if query.error is not None:
            detail = f": {query.error.errorDetail}" if query.error.errorDetail else ""
            # Coalesce's (and Snowflake's) text: shown only if it holds no secret.
            return foreign_text(
                f"{query.error.errorString}{detail}", context="Coalesce's error text"
            )
    return f"node {foreign_name(result.runState, limit=40) or 'failed'}"
