"""From a validated run to the exact ``POST /scheduler/startRun`` body (coalesce-api.md §0-1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.models import UserCredentials

# coalesce-api.md §0.1: the published request key is forceIgnoreWorkspaceStatus, the
# product's (and the response's) name is forceIgnoreEnvironmentStatus. Sending both with
# the same value works whichever one the server reads.
FORCE_KEYS = ("forceIgnoreEnvironmentStatus", "forceIgnoreWorkspaceStatus")


DETAIL_KEYS = ("jobID", "includeNodesSelector", "excludeNodesSelector", "parallelism")


def build_request(
    environment_id: str,
    run: Mapping[str, Any],
    credentials: UserCredentials | None,
) -> dict[str, Any]:
    """The startRun body for a run's settings (``defaults`` merged in, keys as in
    :class:`~runner.spec.models.RunSettings`). Secret values stay
    :class:`~runner.secrets.Secret` objects: ``redact_all`` makes the reviewable form,
    ``reveal_all`` the one that is sent."""
    details: dict[str, Any] = {"environmentID": environment_id}
    for key in DETAIL_KEYS:
        if run.get(key) is not None:
            details[key] = run[key]
    force = run.get("forceIgnoreEnvironmentStatus")
    if force is not None:
        for key in FORCE_KEYS:
            details[key] = force
    body: dict[str, Any] = {"runDetails": details}
    if credentials is not None:
        body["userCredentials"] = credentials_body(credentials)
    if run.get("parameters"):
        body["parameters"] = dict(run["parameters"])
    return body


def credentials_body(credentials: UserCredentials) -> dict[str, Any]:
    """The ``userCredentials`` object: the fields that are set, in the API's spelling."""
    fields = credentials.model_dump(exclude_none=True)
    fields["snowflakeAuthType"] = credentials.snowflakeAuthType
    return fields
