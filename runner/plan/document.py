"""The plan as a versioned JSON document: the ``--format json`` output and the plan file.

``formatVersion`` 1. A plan file is this document written with ``--out``; apply reads it
back with :func:`plan_from_document` and refuses it if stale (see ``planfile``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.errors import RunnerError
from runner.output import FORMAT_VERSION
from runner.plan.model import (
    Action,
    BatchPlan,
    EnvironmentPlan,
    FieldChange,
    Plan,
    PlannedJob,
    PlannedRun,
    PlanWarning,
    Selection,
)

KIND = "runner-plan"


def plan_to_document(plan: Plan) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": KIND,
        "toolVersion": plan.tool_version,
        "createdAt": plan.created_at.isoformat(),
        "baseline": plan.baseline,
        "stateSerial": plan.state_serial,
        "stateSerials": dict(plan.state_serials or {}),
        "specFiles": dict(sorted(plan.spec_files.items())),
        "variables": dict(sorted(plan.variables.items())),
        "summary": _summary(plan),
        "environments": [_environment(env) for env in plan.environments],
        "runs": [_run(run) for env in plan.environments for run in (*env.runs(), *env.removed)],
    }


def _summary(plan: Plan) -> dict[str, Any]:
    return {
        "hasChanges": plan.has_changes,
        **{action.value: plan.count(action) for action in Action},
        "warnings": sum(1 for _ in plan.warnings()),
        "failing": sum(1 for w in plan.warnings() if w.fails),
    }


def _environment(env: EnvironmentPlan) -> dict[str, Any]:
    return {
        "name": env.name,
        "environmentID": env.environment_id,
        "url": env.url,
        "path": env.path,
        "status": env.status,
        "deployedCommit": env.deployed_commit,
        "offlineReason": env.offline_reason,
        "warnings": [_warning(w) for w in env.warnings],
        "batches": [
            {
                "name": b.name,
                "maxConcurrent": b.max_concurrent,
                "onFailure": b.on_failure,
                "runs": [r.name for r in b.runs],
            }
            for b in env.batches
        ],
    }


def _run(run: PlannedRun) -> dict[str, Any]:
    return {
        "environment": run.environment,
        "batch": run.batch,
        "name": run.name,
        "action": run.action.value,
        "changes": [_change(c) for c in run.changes],
        "ignoredChanges": [_change(c) for c in run.ignored],
        "request": run.request,
        "requestHash": run.request_hash,
        "warnings": [_warning(w) for w in run.warnings],
        "selection": None
        if run.selection is None
        else {
            "count": run.selection.count,
            "nodes": list(run.selection.node_names),
            "nodeIDs": list(run.selection.node_ids),
        },
        "source": run.source,
        "job": None if run.job is None else _job(run.job),
    }


def _job(job: PlannedJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "byName": job.by_name,
        "includeSelector": job.include_selector,
        "excludeSelector": job.exclude_selector,
    }


def _read_job(raw: Mapping[str, Any] | None) -> PlannedJob | None:
    if raw is None:
        return None
    return PlannedJob(
        id=raw["id"],
        name=raw["name"],
        by_name=bool(raw["byName"]),
        include_selector=raw.get("includeSelector"),
        exclude_selector=raw.get("excludeSelector"),
    )


def _warning(warning: PlanWarning) -> dict[str, Any]:
    return {"code": warning.code, "message": warning.message, "fails": warning.fails}


def plan_from_document(doc: Mapping[str, Any], where: str = "the plan file") -> Plan:
    """Read a plan document back; a document of another kind or version is refused."""
    if doc.get("kind") != KIND or doc.get("formatVersion") != FORMAT_VERSION:
        raise RunnerError(
            f"{where} is not a runner plan (format version {FORMAT_VERSION})",
            hint="make one with: runner plan --out PLAN.json",
        )
    try:
        return _read(doc)
    except (KeyError, TypeError, ValueError) as error:
        raise RunnerError(f"{where} is damaged ({type(error).__name__}: {error})") from None


def _read(doc: Mapping[str, Any]) -> Plan:
    runs_by_env: dict[str, list[PlannedRun]] = {}
    for raw in doc["runs"]:
        runs_by_env.setdefault(raw["environment"], []).append(_read_run(raw))
    environments = []
    for env in doc["environments"]:
        runs = {
            r.name: r for r in runs_by_env.get(env["name"], []) if r.action is not Action.REMOVED
        }
        removed = tuple(r for r in runs_by_env.get(env["name"], []) if r.action is Action.REMOVED)
        batches = tuple(
            BatchPlan(
                b["name"], b["maxConcurrent"], b["onFailure"], tuple(runs[n] for n in b["runs"])
            )
            for b in env["batches"]
        )
        environments.append(
            EnvironmentPlan(
                name=env["name"],
                environment_id=env["environmentID"],
                url=env["url"],
                path=env["path"],
                batches=batches,
                removed=removed,
                warnings=tuple(_read_warning(w, env["name"], None) for w in env["warnings"]),
                status=env["status"],
                offline_reason=env["offlineReason"],
                deployed_commit=env.get("deployedCommit"),
            )
        )
    return Plan(
        environments=tuple(environments),
        baseline=doc["baseline"],
        created_at=dt.datetime.fromisoformat(doc["createdAt"]),
        state_serials=_serials(doc.get("stateSerials")),
        spec_files=dict(doc["specFiles"]),
        variables=dict(doc["variables"]),
        tool_version=doc["toolVersion"],
    )


def _serials(raw: Any) -> dict[str, int] | None:
    """A plan's serial per environment (``None`` from a runner that kept one in all)."""
    if raw is None:
        return None
    return {str(name): int(serial) for name, serial in dict(raw).items()}


def _change(change: FieldChange) -> dict[str, Any]:
    return {"field": change.field, "before": change.before, "after": change.after}


def _read_run(raw: Mapping[str, Any]) -> PlannedRun:
    selection = raw.get("selection")
    return PlannedRun(
        environment=raw["environment"],
        batch=raw["batch"],
        name=raw["name"],
        action=Action(raw["action"]),
        request=raw["request"],
        changes=tuple(FieldChange(c["field"], c["before"], c["after"]) for c in raw["changes"]),
        ignored=tuple(
            FieldChange(c["field"], c["before"], c["after"]) for c in raw.get("ignoredChanges", [])
        ),
        warnings=tuple(_read_warning(w, raw["environment"], raw["name"]) for w in raw["warnings"]),
        selection=None
        if selection is None
        else Selection(tuple(selection["nodeIDs"]), tuple(selection["nodes"])),
        source=raw.get("source", ""),
        job=_read_job(raw.get("job")),
    )


def _read_warning(raw: Mapping[str, Any], environment: str, run: str | None) -> PlanWarning:
    return PlanWarning(raw["code"], raw["message"], environment, run, bool(raw["fails"]))
