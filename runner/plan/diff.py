"""Field-level differences between two redacted startRun bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.plan.model import FieldChange
from runner.selectors import SelectorError, canonical_text

SELECTOR_FIELDS = ("includeNodesSelector", "excludeNodesSelector")
# Both wire names of the force flag carry one value (coalesce-api.md §0.1): show it once.
SHADOW_FIELDS = ("runDetails.forceIgnoreWorkspaceStatus",)


def flatten(request: Mapping[str, Any]) -> dict[str, Any]:
    """``{"runDetails": {"jobID": "7"}}`` -> ``{"runDetails.jobID": "7"}``; selectors canonical."""
    fields: dict[str, Any] = {}
    for section, value in request.items():
        if isinstance(value, Mapping):
            for key, inner in value.items():
                fields[f"{section}.{key}"] = _normal(key, inner)
        else:
            fields[section] = value
    for name in SHADOW_FIELDS:
        fields.pop(name, None)
    return fields


def _normal(key: str, value: Any) -> Any:
    if key in SELECTOR_FIELDS and isinstance(value, str):
        try:
            return canonical_text(value)
        except SelectorError:
            return value
    return value


def diff_requests(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The fields that differ, in a stable order (runDetails, userCredentials, parameters)."""
    old, new = flatten(before), flatten(after)
    names = sorted(set(old) | set(new), key=_field_order)
    return tuple(
        FieldChange(name, old.get(name), new.get(name))
        for name in names
        if old.get(name) != new.get(name)
    )


def _field_order(name: str) -> tuple[int, str]:
    section = name.split(".", 1)[0]
    rank = {"job": 0, "runDetails": 1, "userCredentials": 2, "parameters": 3}.get(section, 4)
    return rank, name
