"""From a validated run to the exact ``POST /scheduler/startRun`` request (coalesce-api.md
§0-1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.coalesce.requests import StartRunRequest
from runner.secrets import Secret
from runner.spec.models import UserCredentials


def build_request(
    environment_id: str,
    run: Mapping[str, Any],
    credentials: UserCredentials | None,
) -> StartRunRequest:
    """The startRun request for a run's settings (``defaults`` merged in, keys as in
    :class:`~runner.spec.models.RunSettings`). Secret values stay
    :class:`~runner.secrets.Secret` objects to the wire."""
    return StartRunRequest(
        environment_id,
        job_id=run.get("jobID"),
        job_name=run.get("job"),
        include_nodes_selector=run.get("includeNodesSelector"),
        exclude_nodes_selector=run.get("excludeNodesSelector"),
        parallelism=run.get("parallelism"),
        force_ignore_environment_status=run.get("forceIgnoreEnvironmentStatus"),
        credentials=None if credentials is None else credentials_body(credentials),
        parameters=run.get("parameters") or {},
    )


def credentials_body(credentials: UserCredentials) -> dict[str, str | Secret]:
    """The ``userCredentials`` object: the fields that are set, in the API's spelling."""
    fields: dict[str, str | Secret] = credentials.model_dump(exclude_none=True)
    fields["snowflakeAuthType"] = credentials.snowflakeAuthType
    return fields
