"""From a validated run to the exact ``POST /scheduler/startRun`` body (coalesce-api.md §0-1)."""

from __future__ import annotations

from typing import Any

from runner.spec.models import RunSettings, UserCredentials

# coalesce-api.md §0.1: the published request key is forceIgnoreWorkspaceStatus, the
# product's (and the response's) name is forceIgnoreEnvironmentStatus. Sending both with
# the same value works whichever one the server reads.
FORCE_KEYS = ("forceIgnoreEnvironmentStatus", "forceIgnoreWorkspaceStatus")


def build_request(
    environment_id: str,
    run: RunSettings,
    credentials: UserCredentials | None,
) -> dict[str, Any]:
    """The startRun body. Secret values stay :class:`~runner.secrets.Secret` objects:
    ``redact_all`` makes the reviewable form, ``reveal_all`` the one that is sent."""
    details: dict[str, Any] = {"environmentID": environment_id}
    if run.jobID is not None:
        details["jobID"] = run.jobID
    if run.includeNodesSelector is not None:
        details["includeNodesSelector"] = run.includeNodesSelector
    if run.excludeNodesSelector is not None:
        details["excludeNodesSelector"] = run.excludeNodesSelector
    if run.parallelism is not None:
        details["parallelism"] = run.parallelism
    if run.forceIgnoreEnvironmentStatus is not None:
        for key in FORCE_KEYS:
            details[key] = run.forceIgnoreEnvironmentStatus
    body: dict[str, Any] = {"runDetails": details}
    if credentials is not None:
        body["userCredentials"] = credentials_body(credentials)
    if run.parameters:
        body["parameters"] = dict(run.parameters)
    return body


def credentials_body(credentials: UserCredentials) -> dict[str, Any]:
    """The ``userCredentials`` object: the fields that are set, in the API's spelling."""
    fields = credentials.model_dump(exclude_none=True)
    fields["snowflakeAuthType"] = credentials.snowflakeAuthType
    return fields
