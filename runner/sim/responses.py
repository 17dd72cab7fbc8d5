"""The simulator's answers, built from the product's wire models.

Building them through ``runner.coalesce.models`` keeps the simulator and the client
agreeing on every field name; fields Coalesce documents but the models do not name are
passed as extra fields.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from runner.coalesce.models import (
    DeployedJob,
    Environment,
    EnvironmentNode,
    EnvironmentSummary,
    ErrorDetail,
    NodeMetadata,
    NodeRef,
    QueryResult,
    RunDetails,
    RunInfo,
    RunResult,
    RunResultsResponse,
    RunStatusResponse,
    RunSummary,
    SourceMapping,
)
from runner.sim.clock import format_time
from runner.sim.graph import SimNode
from runner.sim.listing import RUN_TYPE
from runner.sim.runs import NodeState, Run
from runner.sim.world import EnvironmentSpec, JobSpec

__all__ = [
    "environment_detail",
    "environment_summary",
    "job_view",
    "node_view",
    "run_info",
    "run_results",
    "run_status",
    "run_summary",
]

CREATED_AT = "2025-11-03T09:00:00.000Z"
CREATED_BY = "sim-admin"
DEFAULT_WAREHOUSE = "COMPUTE_WH"
_QUERY_ID_NAMESPACE = uuid.UUID("2b0c1f4e-8d7a-4f0e-9a51-6c3d2e1b0a99")


def _time(value: float | None) -> str | None:
    return None if value is None else format_time(value)


# ----------------------------------------------------------------------- runs


def run_status(run: Run, now: float, link: str) -> dict[str, Any]:
    return RunStatusResponse(runStatus=run.status(now), runType=RUN_TYPE, runLink=link).to_wire()


def _end_time(run: Run, now: float) -> float | None:
    return run.finished_at if run.is_terminal(now) else None


def _failure_reason(run: Run, now: float) -> str | None:
    status = run.status(now)
    if status == "canceled":
        return "The run was canceled."
    if status != "failed":
        return None
    failed = [run.graph.nodes[p.node_id] for p in run.nodes if p.outcome == "failed"]
    names = ", ".join(f"{n.location}.{n.name}" for n in failed)
    return f"{len(failed)} node{'s' if len(failed) != 1 else ''} failed: {names}"


def run_summary(run: Run, now: float) -> dict[str, Any]:
    return RunSummary(
        id=run.id,
        reRunID=run.request.rerun_of,
        runStartTime=format_time(run.created),
        runEndTime=_time(_end_time(run, now)),
        runType=RUN_TYPE,
        runStatus=run.status(now),
        environmentID=run.environment_id,
        projectID=run.graph.project_id,
        runFailureReason=_failure_reason(run, now),
    ).to_wire()


def run_info(run: Run, now: float) -> dict[str, Any]:
    request = run.request
    job = request.job
    details = RunDetails(
        environmentID=run.environment_id,
        jobID=job.id if job is not None else None,
        jobName=job.name if job is not None else None,
        includeNodesSelector=request.include,
        excludeNodesSelector=request.exclude,
        parallelism=request.parallelism,
        forceIgnoreEnvironmentStatus=bool(request.force),
        canceled=run.status(now) == "canceled",
        refreshDescription=_description(run),
        nodesForRefresh=len(run.nodes),
        nodesInRun=len(run.nodes),
    ).to_wire()
    info = RunInfo(
        id=run.id,
        reRunID=request.rerun_of,
        runDetails=details,
        runStartTime=format_time(run.created),
        runEndTime=_time(_end_time(run, now)),
        runHistory=_history(run, now),
        runStatus=run.status(now),
        runTimeParameters=run.runtime_parameters,
        runType=RUN_TYPE,
        userCredentials=request.credentials,
        userID="sim-user",
        version="sim-1",
        environmentID=run.environment_id,
        projectID=run.graph.project_id,
        runFailureReason=_failure_reason(run, now),
    ).to_wire()
    if job is not None:
        info["runDetails"]["jobID"] = int(job.id)  # the response schema types it as an integer
    return info


def _description(run: Run) -> str:
    if run.request.rerun_of is not None:
        return f"Rerun of run {run.request.rerun_of}"
    if run.request.job is not None:
        return f"Job {run.request.job.id}: {run.request.job.name}"
    if run.request.include or run.request.exclude:
        return "Ad-hoc selection"
    return "Refresh of the whole environment"


def _history(run: Run, now: float) -> list[dict[str, str]]:
    history = [{"runStatus": "waitingToRun", "timestamp": format_time(run.created)}]
    canceled_first = run.canceled_at is not None and run.canceled_at <= run.start
    if now >= run.start and not canceled_first:
        history.append({"runStatus": "running", "timestamp": format_time(run.start)})
    if run.is_terminal(now):
        history.append({"runStatus": run.status(now), "timestamp": format_time(run.finished_at)})
    return history


def run_results(run: Run, now: float, environment: EnvironmentSpec, seed: int) -> dict[str, Any]:
    builder = _ResultBuilder(run, now, environment, seed)
    results = [builder.result(state) for state in run.node_states(now)]
    return RunResultsResponse(data=results).to_wire()


class _ResultBuilder:
    """Per-node results: a render step, then one or two queries per node."""

    def __init__(self, run: Run, now: float, environment: EnvironmentSpec, seed: int) -> None:
        self.run = run
        self.now = now
        self.environment = environment
        self.seed = seed
        self.database = environment.database or f"{environment.name.upper()}_DB"
        self.warehouse = run.request.credentials.get("snowflakeWarehouse", DEFAULT_WAREHOUSE)

    def result(self, state: NodeState) -> RunResult:
        node = self.run.graph.nodes[state.plan.node_id]
        if state.state == "skipped":
            queries = [self._skipped(state, node)]
        elif state.start is None:
            queries = []  # canceled before it started
        else:
            queries = self._queries(state, node)
        render = None
        if state.start is not None:
            render = QueryResult(
                name="Render",
                status="Success",
                success=True,
                isRunning=False,
                startTime=format_time(state.start),
                endTime=format_time(state.start),
            )
        return RunResult(
            nodeID=node.id,
            name=node.name,
            isRunning=state.state == "running",
            runState=state.state,
            origin="API",
            queryResults=queries,
            renderQueryResult=render,
        )

    def _skipped(self, state: NodeState, node: SimNode) -> QueryResult:
        assert state.plan.blocked_by is not None and state.plan.skipped_at is not None
        blocker = self.run.graph.nodes[state.plan.blocked_by]
        upstream = f"{blocker.location}.{blocker.name}"
        when = format_time(self.run.start + state.plan.skipped_at)
        return QueryResult(
            name="Skipped",
            status="Skipped",
            success=False,
            isRunning=False,
            error=ErrorDetail(
                errorString=f"Skipped because upstream node {upstream} failed",
                errorDetail=f"{node.location}.{node.name} depends on {upstream}, "
                "which failed in this run.",
            ),
            startTime=when,
            endTime=when,
        )

    def _queries(self, state: NodeState, node: SimNode) -> list[QueryResult]:
        """The node's queries so far. A running node shows its queries up to the one in
        progress; a node canceled while running ends with a canceled query."""
        plan = state.plan
        assert state.start is not None and plan.start is not None and plan.end is not None
        length = plan.end - plan.start
        queries: list[QueryResult] = []
        begin = state.start
        steps = self._steps(node)
        for index, (name, sql, share) in enumerate(steps):
            last = index == len(steps) - 1
            finish = state.start + length if last else begin + length * share
            common: dict[str, Any] = {
                "name": name,
                "sql": sql,
                "queryID": str(uuid.uuid5(_QUERY_ID_NAMESPACE, f"{self.run.id}/{node.id}/{index}")),
                "warehouse": self.warehouse,
                "startTime": format_time(begin),
            }
            stop = self.now if state.state == "running" else state.end
            if state.state in ("running", "canceled"):
                assert stop is not None
                if stop < begin or (stop == begin and index > 0):
                    break
                if stop < finish:
                    queries.append(self._interrupted(state.state, stop, common))
                    break
            if last and state.state == "failed":
                queries.append(self._failed(state, node, finish, common))
            else:
                queries.append(self._succeeded(node, finish, common))
            begin = finish
        return queries

    def _interrupted(self, state: str, stop: float, common: dict[str, Any]) -> QueryResult:
        if state == "running":
            return QueryResult(status="Running", isRunning=True, **common)
        return QueryResult(
            status="Canceled",
            success=False,
            isRunning=False,
            endTime=format_time(stop),
            error=ErrorDetail(
                errorString="Canceled",
                errorDetail="The run was canceled while this query was running.",
            ),
            **common,
        )

    def _failed(
        self, state: NodeState, node: SimNode, finish: float, common: dict[str, Any]
    ) -> QueryResult:
        failure = state.plan.failure
        assert failure is not None
        return QueryResult(
            status="Failed",
            success=False,
            isRunning=False,
            endTime=format_time(finish),
            error=ErrorDetail(
                errorString=failure.error,
                errorDetail=failure.detail
                or f"Node {node.location}.{node.name} failed in query '{common['name']}'.",
            ),
            **common,
        )

    def _succeeded(self, node: SimNode, finish: float, common: dict[str, Any]) -> QueryResult:
        return QueryResult(
            status="Success",
            success=True,
            isRunning=False,
            endTime=format_time(finish),
            rowsInserted=self._rows(node) if common["name"] == "Insert Data" else 0,
            rowsUpdated=0,
            rowsDeleted=0,
            **common,
        )

    def _rows(self, node: SimNode) -> int:
        return random.Random(f"{self.seed}:{self.run.id}:{node.id}:rows").randint(1_000, 2_500_000)

    def _steps(self, node: SimNode) -> list[tuple[str, str, float]]:
        target = f'"{self.database}"."{node.location}"."{node.name}"'
        sources = [self.run.graph.nodes[u] for u in node.depends_on]
        source_list = ", ".join(f'"{self.database}"."{s.location}"."{s.name}"' for s in sources)
        select = f"SELECT * FROM {source_list or f'RAW.{node.location}.{node.name}'}"
        if node.node_type.lower() == "view":
            return [("Create View", f"CREATE OR REPLACE VIEW {target} AS {select}", 1.0)]
        return [
            ("Create Table", f"CREATE OR REPLACE TABLE {target} LIKE {target}", 0.2),
            ("Insert Data", f"INSERT INTO {target} {select}", 0.8),
        ]


# ----------------------------------------------------------------------- environments


def environment_summary(environment: EnvironmentSpec, status: str) -> dict[str, Any]:
    return EnvironmentSummary(
        id=environment.id,
        name=environment.name,
        project=environment.project,
        status=status,
        createdAt=CREATED_AT,
        createdBy=CREATED_BY,
    ).to_wire()


def environment_detail(
    environment: EnvironmentSpec, status: str, locations: list[str]
) -> dict[str, Any]:
    database = environment.database or f"{environment.name.upper()}_DB"
    return Environment(
        id=environment.id,
        name=environment.name,
        project=environment.project,
        status=status,
        createdAt=CREATED_AT,
        createdBy=CREATED_BY,
        description=environment.description,
        connectionAccount="sim-account",
        oauthEnabled=False,
        runTimeParameters=dict(environment.parameters),
        deployedCommit=environment.deployedCommit,
        currentMappings={loc: {"database": database, "schema": loc} for loc in locations},
        defaultStorageMapping=locations[0] if locations else None,
        tagColors={},
    ).to_wire()


def job_view(job: JobSpec) -> dict[str, Any]:
    return DeployedJob(
        id=job.id, name=job.name, includeSelector=job.include, excludeSelector=job.exclude
    ).to_wire()


def node_view(
    node: SimNode, environment: EnvironmentSpec, graph_nodes: dict[str, SimNode], detail: bool
) -> dict[str, Any]:
    database = environment.database or f"{environment.name.upper()}_DB"
    metadata = None
    if detail:
        upstream = [graph_nodes[u] for u in node.depends_on]
        metadata = NodeMetadata(
            sourceMapping=[
                SourceMapping(
                    name=node.name,
                    dependencies=[
                        NodeRef(locationName=u.location, nodeName=u.name) for u in upstream
                    ],
                    aliases={},
                )
            ]
        )
    return EnvironmentNode(
        id=node.id,
        name=node.name,
        locationName=node.location,
        nodeType=node.node_type,
        database=database,
        schema_=node.location,
        metadata=metadata,
    ).to_wire()
