"""The Coalesce API: wire models, the URL allow-list, the retry rules and the async
client that talks to Coalesce (or to the embedded simulator at ``sim://``).

Typical use::

    async with ClientPool() as pool:
        client = pool.client(url, token, token_source="the environment variable COALESCE_TOKEN")
        match await client.start_run(body):
            case Started(run_counter=run_id):
                ...  # record run_id, then poll client.run_status(run_id)
            case Ambiguous(sent_at=sent_at):
                ...  # look for the run with client.iter_runs(environment_id=...) first

Reads retry by themselves; ``start_run``, ``rerun`` and ``cancel_run`` never send twice
unless the first request provably did not reach Coalesce (see :mod:`.retry`).
"""

from __future__ import annotations

from runner.coalesce.client import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    ClientPool,
    Clock,
    CoalesceClient,
)
from runner.coalesce.errors import CoalesceAPIError, CoalesceUnreachable
from runner.coalesce.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    DependencyEdge,
    Environment,
    EnvironmentNode,
    EnvironmentSummary,
    ErrorBody,
    ErrorDetail,
    NodeKey,
    Page,
    QueryResult,
    RunDetails,
    RunInfo,
    RunResult,
    RunStatusResponse,
    RunSummary,
    StartRunResponse,
    dependency_edges,
    is_terminal,
)
from runner.coalesce.outcomes import Ambiguous, CancelAccepted, CancelOutcome, Started, StartOutcome
from runner.coalesce.retry import READ_RETRY, WRITE_RETRY, RetryPolicy
from runner.coalesce.urls import ALLOWED_HOSTS_ENV, SIM_URL, URLNotAllowedError, check_url

__all__ = [
    "ACTIVE_STATUSES",
    "ALLOWED_HOSTS_ENV",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "READ_RETRY",
    "SIM_URL",
    "TERMINAL_STATUSES",
    "WRITE_RETRY",
    "Ambiguous",
    "CancelAccepted",
    "CancelOutcome",
    "ClientPool",
    "Clock",
    "CoalesceAPIError",
    "CoalesceClient",
    "CoalesceUnreachable",
    "DependencyEdge",
    "Environment",
    "EnvironmentNode",
    "EnvironmentSummary",
    "ErrorBody",
    "ErrorDetail",
    "NodeKey",
    "Page",
    "QueryResult",
    "RetryPolicy",
    "RunDetails",
    "RunInfo",
    "RunResult",
    "RunStatusResponse",
    "RunSummary",
    "StartOutcome",
    "StartRunResponse",
    "Started",
    "URLNotAllowedError",
    "check_url",
    "dependency_edges",
    "is_terminal",
]
