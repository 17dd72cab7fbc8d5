"""Typed models of what the Coalesce API sends and receives.

Field names are the wire's own (camelCase), so the same models parse Coalesce's answers
in the client and serialise the simulator's answers. Responses come from a server that
adds fields over time, so every model keeps unknown fields (``extra="allow"``) instead of
rejecting them, and most fields are optional: a missing field is ``None``, not an error.

Identifiers that Coalesce sends sometimes as numbers and sometimes as strings
(``environmentID``, ``jobID``, node ids, cursors) are normalised to strings; run ids
(``runCounter``, ``id`` of a run) are integers from 1 to 2**63-1, checked strictly:
``runCounter`` must be a JSON integer (:data:`RunId`); the ``id`` of a listed run may
also come as a string of digits (:data:`ListedRunId`). ``true``, ``1.5``, ``0``, ``-1``
or a 30-digit number is a malformed answer, never an id that would be stored, compared
or sent back.

This module does no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_RUN_ID",
    "TERMINAL_STATUSES",
    "DependencyEdge",
    "Environment",
    "EnvironmentNode",
    "EnvironmentSummary",
    "ErrorBody",
    "ErrorDetail",
    "ListedRunId",
    "NodeKey",
    "NodeMetadata",
    "NodeRef",
    "Page",
    "QueryResult",
    "RunDetails",
    "RunId",
    "RunInfo",
    "RunResult",
    "RunResultsResponse",
    "RunStatusResponse",
    "RunSummary",
    "SourceMapping",
    "StartRunResponse",
    "WireModel",
    "dependency_edges",
    "is_terminal",
]

# --------------------------------------------------------------------------- statuses

#: A run in one of these states will not change any more. Spelled as Coalesce spells
#: them (``canceled`` with one L).
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})

#: The non-terminal states Coalesce documents. Informational only: any value that is not
#: terminal, including one never seen before, means "still running".
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {"initializing", "rendering", "waitingToRun", "running"}
)


def is_terminal(status: str) -> bool:
    """Whether a run with this ``runStatus`` has ended.

    Only the three documented end states count; an unknown status is treated as still
    running, because stopping to wait on a run that is still going is the worse mistake.
    """
    return status in TERMINAL_STATUSES


# --------------------------------------------------------------------------- field types


def _id_to_str(value: object) -> object:
    # bool is an int subclass; a boolean id is malformed and must stay an error.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _detail_to_str(value: object) -> object:
    # errorDetail is documented as a string, but a server may send an object; keep its
    # content as JSON text rather than failing to read the error at all.
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


#: The largest run id: what a signed 64-bit integer (the state database's) can hold.
MAX_RUN_ID = 2**63 - 1
#: A run id (``runCounter``, a run's ``id``): strictly an integer (not a bool, float or
#: string) from 1 to :data:`MAX_RUN_ID`.
RunId = Annotated[int, Strict(), Field(ge=1, le=MAX_RUN_ID)]


def _digits_to_int(value: object) -> object:
    # Only plain ASCII digits: int() would also take "٤٢", " 42", "4_2" and "+42".
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return value


#: The ``id`` of a run in ``/api/v1/runs`` answers: a :data:`RunId`, or one written as
#: a string of digits (the API has sent both).
ListedRunId = Annotated[RunId, BeforeValidator(_digits_to_int)]
#: An identifier kept as a string, accepted from JSON as a string or an integer.
IdStr = Annotated[str, BeforeValidator(_id_to_str)]
DetailStr = Annotated[str, BeforeValidator(_detail_to_str)]


class WireModel(BaseModel):
    """Base of every wire model: keeps unknown fields, serialises with wire names."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        serialize_by_alias=True,
        # Built when first used: a command needs a few of these models, and building
        # all of them on import took a tenth of the start-up of `runner apply`.
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this model, leaving out fields that are ``None``."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------- errors


class ErrorDetail(WireModel):
    """Coalesce's error object: ``errorString`` (required by the schema) and an optional
    ``errorDetail``."""

    errorString: str = ""
    errorDetail: DetailStr | None = None


class ErrorBody(WireModel):
    """The body of every error response: ``{"error": {"errorString", "errorDetail"?}}``."""

    error: ErrorDetail


# --------------------------------------------------------------------------- scheduler


class StartRunResponse(WireModel):
    """The answer to startRun and rerun: the new run's id."""

    runCounter: RunId


class RunStatusResponse(WireModel):
    """The answer to ``GET /scheduler/runStatus?runCounter=N``."""

    runStatus: str
    runType: str | None = None
    runLink: str | None = None

    @property
    def terminal(self) -> bool:
        return is_terminal(self.runStatus)


# --------------------------------------------------------------------------- runs


class RunSummary(WireModel):
    """One item of ``GET /api/v1/runs``."""

    id: ListedRunId
    reRunID: int | str | None = None
    runStartTime: str | None = None
    runEndTime: str | None = None
    runType: str | None = None
    runStatus: str = ""
    environmentID: IdStr | None = None
    projectID: IdStr | None = None
    runFailureReason: str | None = None


class RunDetails(WireModel):
    """``runDetails`` of a refresh run as ``GET /api/v1/runs/{id}`` reports it.

    The response names the force flag ``forceIgnoreEnvironmentStatus`` (the request
    schema says ``forceIgnoreWorkspaceStatus``); both are read when present.
    """

    environmentID: IdStr | None = None
    jobID: IdStr | None = None
    jobName: str | None = None
    includeNodesSelector: str | None = None
    excludeNodesSelector: str | None = None
    parallelism: int | None = None
    forceIgnoreEnvironmentStatus: bool | None = None
    forceIgnoreWorkspaceStatus: bool | None = None
    canceled: bool | None = None
    refreshDescription: str | None = None
    nodesForRefresh: Any = None
    nodesInRun: Any = None
    runTimeParameters: dict[str, Any] | None = None


class RunInfo(WireModel):
    """``GET /api/v1/runs/{id}``."""

    id: ListedRunId
    reRunID: int | str | None = None
    runDetails: RunDetails | None = None
    runStartTime: str | None = None
    runEndTime: str | None = None
    runHistory: list[Any] | None = None
    runStatus: str = ""
    runTimeParameters: dict[str, Any] | None = None
    runType: str | None = None
    userCredentials: dict[str, Any] | None = None
    userID: IdStr | None = None
    version: str | int | None = None


class QueryResult(WireModel):
    """One query a node ran, with its outcome."""

    name: str | None = None
    sql: str | None = None
    status: str | None = None
    success: bool | None = None
    isRunning: bool | None = None
    error: ErrorDetail | None = None
    rowsInserted: int | None = None
    rowsUpdated: int | None = None
    rowsDeleted: int | None = None
    startTime: str | None = None
    endTime: str | None = None
    queryID: str | None = None
    warehouse: str | None = None


class RunResult(WireModel):
    """The result of one node in a run (``GET /api/v1/runs/{id}/results``)."""

    nodeID: IdStr | None = None
    name: str | None = None
    isRunning: bool | None = None
    runState: str | None = None
    origin: str | None = None
    hasTestFailures: bool | None = None
    queryResults: list[QueryResult] = Field(default_factory=list)
    renderQueryResult: QueryResult | None = None

    @property
    def failed_queries(self) -> list[QueryResult]:
        """The queries of this node that did not succeed (rendering included)."""
        queries = [*self.queryResults]
        if self.renderQueryResult is not None:
            queries.insert(0, self.renderQueryResult)
        return [q for q in queries if q.success is False or q.error is not None]


class RunResultsResponse(WireModel):
    """``GET /api/v1/runs/{id}/results``: ``{"data": [RunResult, ...]}``."""

    data: list[RunResult] = Field(default_factory=list)


# --------------------------------------------------------------------------- environments


class EnvironmentSummary(WireModel):
    """One item of ``GET /api/v1/environments``; ``status`` is e.g. ``Waiting`` or
    ``Failed Deploy``."""

    id: IdStr
    name: str | None = None
    project: IdStr | None = None
    status: str | None = None
    createdAt: str | None = None
    createdBy: Any = None


class Environment(EnvironmentSummary):
    """``GET /api/v1/environments/{id}``."""

    description: str | None = None
    connectionAccount: str | None = None
    oauthEnabled: bool | None = None
    runTimeParameters: dict[str, Any] | None = None
    deployedCommit: Any = None
    currentMappings: Any = None


class DeployedJob(WireModel):
    """One item of ``GET /api/v1/environments/{id}/jobs``: a job deployed there."""

    id: IdStr
    name: str | None = None
    includeSelector: str | None = None
    excludeSelector: str | None = None


class NodeKey(NamedTuple):
    """How a node is named in dependencies and selectors: its location and name."""

    location: str
    name: str


class DependencyEdge(NamedTuple):
    """``downstream`` reads from ``upstream``."""

    upstream: NodeKey
    downstream: NodeKey


class NodeRef(WireModel):
    """A node named by location and name, as in ``sourceMapping[].dependencies``."""

    locationName: str = ""
    nodeName: str

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.locationName, self.nodeName)


class SourceMapping(WireModel):
    name: str | None = None
    dependencies: list[NodeRef] = Field(default_factory=list)
    aliases: dict[str, Any] | None = None


class NodeMetadata(WireModel):
    sourceMapping: list[SourceMapping] = Field(default_factory=list)


class EnvironmentNode(WireModel):
    """One node of ``GET /api/v1/environments/{id}/nodes``; ``metadata`` only with
    ``detail=true``.

    The wire field ``schema`` is ``schema_`` in Python (``schema`` would shadow a
    pydantic attribute); it is read and written as ``schema``.
    """

    id: IdStr
    name: str
    locationName: str = ""
    nodeType: str | None = None
    database: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    metadata: NodeMetadata | None = None

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.locationName, self.name)

    @property
    def dependencies(self) -> list[NodeKey]:
        """The nodes this node reads from, in order of first mention, without repeats."""
        if self.metadata is None:
            return []
        seen: dict[NodeKey, None] = {}
        for mapping in self.metadata.sourceMapping:
            for ref in mapping.dependencies:
                seen.setdefault(ref.key, None)
        return list(seen)


def dependency_edges(nodes: Iterable[EnvironmentNode]) -> list[DependencyEdge]:
    """Every ``upstream -> downstream`` edge among ``nodes``, without repeats.

    An edge to a node that is not in ``nodes`` is kept: whether a missing upstream
    matters is the caller's decision. Nodes fetched without ``detail=true`` have no
    dependencies.
    """
    edges: dict[DependencyEdge, None] = {}
    for node in nodes:
        for upstream in node.dependencies:
            edges.setdefault(DependencyEdge(upstream, node.key), None)
    return list(edges)


# --------------------------------------------------------------------------- paging

ItemT = TypeVar("ItemT")


class Page(WireModel, Generic[ItemT]):
    """The envelope of every paged list. Send ``next`` back as ``startingFrom`` (with
    ``orderBy``) for the following page; no ``next`` means this was the last page."""

    data: list[ItemT] = Field(default_factory=list)
    limit: int | None = None
    next: IdStr | None = None
    total: int | None = None
    orderBy: str | None = None
    orderByDirection: str | None = None
    startingFrom: IdStr | None = None
