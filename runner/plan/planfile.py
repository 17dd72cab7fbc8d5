"""Plan files (``plan --out PLAN.json``): written without secrets, refused when stale."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from runner.errors import RunnerError, StalePlanError, quoted
from runner.files import write_atomically
from runner.plan.document import plan_from_document, plan_to_document
from runner.plan.model import Plan


def write_plan_file(plan: Plan, path: Path) -> None:
    """Write atomically (a reader never sees half a plan, a link at ``path`` is never
    followed), readable by the owner only."""
    text = json.dumps(plan_to_document(plan), indent=2, sort_keys=False) + "\n"
    write_atomically(path, text, mode=0o600)


def read_plan_file(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text())
    except OSError as error:
        raise RunnerError(f"cannot read plan file {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise RunnerError(f"{path} is not a plan file: not JSON ({error.msg})") from None
    if not isinstance(doc, dict):
        raise RunnerError(f"{path} is not a plan file")
    return plan_from_document(doc, str(path))


def looks_like_plan_file(path: str) -> bool:
    return path.endswith(".json") and Path(path).is_file()


def stale_reasons(plan: Plan, state_serials: Mapping[str, int]) -> list[str]:
    """Why a plan no longer describes what apply would do; empty when it is fresh."""
    reasons: list[str] = []
    for name, digest in sorted(plan.spec_files.items()):
        try:
            now = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            reasons.append(f"{name} is gone")
            continue
        if now != digest:
            reasons.append(f"{name} changed since the plan was made")
    if plan.state_serials is None:
        reasons.append(
            "it was made by an older runner, which kept one serial for the whole state "
            "instead of one per environment"
        )
    moved = [
        f"{quoted(name)} (serial {planned} -> {state_serials.get(name, 0)})"
        for name, planned in sorted((plan.state_serials or {}).items())
        if state_serials.get(name, 0) != planned
    ]
    if moved:
        reasons.append(
            f"the state of {', '.join(moved)} changed since the plan was made: "
            "another apply ran there"
        )
    return reasons


def check_fresh(plan: Plan, state_serials: Mapping[str, int], where: str) -> None:
    reasons = stale_reasons(plan, state_serials)
    if reasons:
        raise StalePlanError(
            f"the plan {where} is stale: " + "; ".join(reasons),
            hint="make a new plan (runner plan --out ...) and review it again",
        )
