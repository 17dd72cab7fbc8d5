"""What plan reads from Coalesce: each environment's status, nodes and jobs, once per
environment."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from runner.coalesce import (
    ClientPool,
    CoalesceUnreachable,
    EnvironmentJobs,
    EnvironmentNode,
    RunInfo,
    read_jobs,
)
from runner.errors import quoted
from runner.secrets import foreign_name
from runner.selectors import Attribute, Node, NodeGraph
from runner.spec import EnvironmentSpec, MissingSecret


@dataclass(frozen=True)
class EnvironmentFacts:
    """An environment as Coalesce reports it, or why it could not be read."""

    name: str
    status: str | None = None
    graph: NodeGraph | None = None
    offline_reason: str | None = None
    # The jobs deployed there (when this Coalesce does not list them, those of the
    # specs' IDs that exist); None when not read.
    jobs: EnvironmentJobs | None = None
    deployed_commit: str | None = None  # what Coalesce says is deployed there
    # Refreshes Coalesce shows running or waiting to run there, whoever started them.
    running: tuple[RunInfo, ...] = ()


def build_graph(nodes: Sequence[EnvironmentNode]) -> NodeGraph:
    """The environment's nodes with their dependencies, for resolving selectors.

    Coalesce's node list does not say which subgraphs a node is in, so a selector on
    ``subgraph`` is not checked against it."""
    ids = {node.key: node.id for node in nodes}
    return NodeGraph(
        [
            Node(
                id=node.id,
                name=node.name,
                location=node.locationName,
                node_type=node.nodeType or "",
                depends_on=tuple(ids[key] for key in node.dependencies if key in ids),
            )
            for node in nodes
        ],
        unknown=(Attribute.SUBGRAPH,),
    )


async def read_environments(
    environments: Sequence[EnvironmentSpec], pool: ClientPool
) -> dict[str, EnvironmentFacts]:
    """Read every environment concurrently; one without a token is planned offline, an
    unreachable one is an error (:class:`CoalesceUnreachable`)."""
    facts = await asyncio.gather(*(_read(env, pool) for env in environments))
    return {fact.name: fact for fact in facts}


async def _read(environment: EnvironmentSpec, pool: ClientPool) -> EnvironmentFacts:
    token = environment.usable_token
    if token is None:
        return EnvironmentFacts(
            environment.name, offline_reason=f"no token: {_token_hint(environment)}"
        )
    client = pool.client(environment.url, token, token_source=environment.token_source)
    try:
        info, nodes, jobs, running = await asyncio.gather(
            client.get_environment(environment.environment_id),
            client.list_nodes(environment.environment_id, detail=True),
            read_jobs(client, environment.environment_id, _job_ids(environment)),
            client.active_runs(environment.environment_id),
        )
    except CoalesceUnreachable as error:
        # Online is the default: a plan that could not read Coalesce would pass for one
        # that did. Skipping Coalesce is asked for with --offline, never assumed.
        raise _unreachable(environment, error) from None
    return EnvironmentFacts(
        environment.name,
        status=info.status,
        graph=build_graph(nodes),
        jobs=jobs,
        deployed_commit=_commit(info.deployedCommit),
        running=tuple(running),
    )


async def read_job_lists(
    environments: Sequence[EnvironmentSpec], offline_reason: str, pool: ClientPool
) -> dict[str, EnvironmentFacts]:
    """Only the jobs of each environment: what resolving job names needs (an environment
    with no token is left unread, its names unresolved)."""

    async def one(environment: EnvironmentSpec) -> EnvironmentFacts:
        token = environment.usable_token
        if token is None:
            return EnvironmentFacts(environment.name, offline_reason=offline_reason)
        client = pool.client(environment.url, token, token_source=environment.token_source)
        try:
            jobs = await read_jobs(client, environment.environment_id, _job_ids(environment))
        except CoalesceUnreachable as error:
            raise _unreachable(
                environment,
                error,
                fix="Its runs name their job by name, which only Coalesce can resolve: "
                "apply cannot go on without it.",
            ) from None
        return EnvironmentFacts(environment.name, offline_reason=offline_reason, jobs=jobs)

    facts = await asyncio.gather(*(one(environment) for environment in environments))
    return {fact.name: fact for fact in facts}


def _unreachable(
    environment: EnvironmentSpec,
    error: CoalesceUnreachable,
    fix: str = "To plan without reading Coalesce, run plan with --offline.",
) -> CoalesceUnreachable:
    return CoalesceUnreachable(
        f"could not read environment {quoted(environment.name)} from Coalesce: {error.message}",
        hint=f"{error.hint or 'Check coalesce.url and your network.'} {fix}",
        method=error.method,
        path=error.path,
    )


def _job_ids(environment: EnvironmentSpec) -> list[str]:
    """The job IDs the environment's runs give (read one by one from a Coalesce that
    does not list its jobs)."""
    return [run.request.job_id for run in environment.runs() if run.request.job_id is not None]


def _commit(deployed: object) -> str | None:
    """The deployed commit as Coalesce gives it (a string, or an object naming one): its
    text, checked like any text from outside and kept short."""
    if isinstance(deployed, dict):
        deployed = next((deployed[k] for k in ("commitSHA", "sha", "id") if k in deployed), None)
    if not isinstance(deployed, str | int) or isinstance(deployed, bool) or deployed == "":
        return None
    return foreign_name(str(deployed), limit=64)


def _token_hint(environment: EnvironmentSpec) -> str:
    token = environment.token
    if isinstance(token, MissingSecret):
        return token.source
    return f"set the token ({environment.token_source})"
