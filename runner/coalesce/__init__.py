"""The Coalesce API: wire models, the URL allow-list, the retry rules and the async
client that talks to Coalesce (or to the embedded simulator at ``sim://``).

Typical use::

    async with ClientPool() as pool:
        client = pool.client(url, token, token_source="the environment variable COALESCE_TOKEN")
        request = StartRunRequest(environment_id, job_id="7")
        match await client.fire(request):
            case Started(run_counter=run_id):
                ...  # record run_id, then poll client.run_status(run_id)
            case Ambiguous(sent_at=sent_at):
                ...  # look for the run with client.iter_runs(environment_id=...) first

Reads retry by themselves; ``fire`` (a :class:`StartRunRequest` or :class:`RerunRequest`)
and ``cancel_run`` never send twice
unless the first request provably did not reach Coalesce (see :mod:`.retry`). Closing
``pool.gate`` (a :class:`SendGate`, on an interrupt) stops every further send: each one
raises :class:`SendingStopped` before anything leaves the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are imported on first use, to keep start-up fast
    from runner.coalesce.client import (
        DEFAULT_LIMITS,
        DEFAULT_TIMEOUT,
        ClientPool,
        Clock,
        CoalesceClient,
    )
    from runner.coalesce.errors import CoalesceAPIError, CoalesceUnreachable
    from runner.coalesce.gate import SendGate, SendingStopped
    from runner.coalesce.jobs import EnvironmentJobs, read_jobs
    from runner.coalesce.models import (
        ACTIVE_STATUSES,
        TERMINAL_STATUSES,
        DependencyEdge,
        DeployedJob,
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
    from runner.coalesce.outcomes import (
        Ambiguous,
        CancelAccepted,
        CancelOutcome,
        Started,
        StartOutcome,
    )
    from runner.coalesce.requests import RerunRequest, StartRunRequest, WriteRequest
    from runner.coalesce.retry import READ_RETRY, WRITE_RETRY, RetryPolicy
    from runner.coalesce.urls import ALLOWED_HOSTS_ENV, SIM_URL, URLNotAllowedError, check_url

_LAZY = {
    "ACTIVE_STATUSES": "runner.coalesce.models",
    "ALLOWED_HOSTS_ENV": "runner.coalesce.urls",
    "Ambiguous": "runner.coalesce.outcomes",
    "CancelAccepted": "runner.coalesce.outcomes",
    "CancelOutcome": "runner.coalesce.outcomes",
    "ClientPool": "runner.coalesce.client",
    "Clock": "runner.coalesce.client",
    "CoalesceAPIError": "runner.coalesce.errors",
    "CoalesceClient": "runner.coalesce.client",
    "CoalesceUnreachable": "runner.coalesce.errors",
    "DEFAULT_LIMITS": "runner.coalesce.client",
    "DEFAULT_TIMEOUT": "runner.coalesce.client",
    "DependencyEdge": "runner.coalesce.models",
    "DeployedJob": "runner.coalesce.models",
    "EnvironmentJobs": "runner.coalesce.jobs",
    "Environment": "runner.coalesce.models",
    "EnvironmentNode": "runner.coalesce.models",
    "EnvironmentSummary": "runner.coalesce.models",
    "ErrorBody": "runner.coalesce.models",
    "ErrorDetail": "runner.coalesce.models",
    "NodeKey": "runner.coalesce.models",
    "Page": "runner.coalesce.models",
    "QueryResult": "runner.coalesce.models",
    "READ_RETRY": "runner.coalesce.retry",
    "RerunRequest": "runner.coalesce.requests",
    "RetryPolicy": "runner.coalesce.retry",
    "RunDetails": "runner.coalesce.models",
    "RunInfo": "runner.coalesce.models",
    "RunResult": "runner.coalesce.models",
    "RunStatusResponse": "runner.coalesce.models",
    "RunSummary": "runner.coalesce.models",
    "SIM_URL": "runner.coalesce.urls",
    "SendGate": "runner.coalesce.gate",
    "SendingStopped": "runner.coalesce.gate",
    "StartOutcome": "runner.coalesce.outcomes",
    "StartRunRequest": "runner.coalesce.requests",
    "StartRunResponse": "runner.coalesce.models",
    "Started": "runner.coalesce.outcomes",
    "TERMINAL_STATUSES": "runner.coalesce.models",
    "URLNotAllowedError": "runner.coalesce.urls",
    "WRITE_RETRY": "runner.coalesce.retry",
    "WriteRequest": "runner.coalesce.requests",
    "check_url": "runner.coalesce.urls",
    "dependency_edges": "runner.coalesce.models",
    "is_terminal": "runner.coalesce.models",
    "read_jobs": "runner.coalesce.jobs",
}

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
    "DeployedJob",
    "Environment",
    "EnvironmentJobs",
    "EnvironmentNode",
    "EnvironmentSummary",
    "ErrorBody",
    "ErrorDetail",
    "NodeKey",
    "Page",
    "QueryResult",
    "RerunRequest",
    "RetryPolicy",
    "RunDetails",
    "RunInfo",
    "RunResult",
    "RunStatusResponse",
    "RunSummary",
    "SendGate",
    "SendingStopped",
    "StartOutcome",
    "StartRunRequest",
    "StartRunResponse",
    "Started",
    "URLNotAllowedError",
    "WriteRequest",
    "check_url",
    "dependency_edges",
    "is_terminal",
    "read_jobs",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.coalesce' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
