"""Plan files (``plan --out PLAN.json``): written without secrets, refused when stale."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path

from runner.errors import RunnerError, StalePlanError
from runner.plan.document import plan_from_document, plan_to_document
from runner.plan.model import Plan


def write_plan_file(plan: Plan, path: Path) -> None:
    """Write atomically (a reader never sees half a plan), readable by the owner only.

    The text goes to a new file of a random name beside ``path``, created exclusively and
    never through a link (a file planted there, or a symlink, makes the write fail
    instead of writing elsewhere), then renamed over ``path``: a link at ``path`` is
    replaced, its target never written."""
    text = json.dumps(plan_to_document(plan), indent=2, sort_keys=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(partial, flags, 0o600)
    except OSError as error:
        raise RunnerError(
            f"cannot write the plan file {path}: {error.strerror or error}",
            hint="check that its folder exists and is writable",
        ) from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


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


def stale_reasons(plan: Plan, state_serial: int) -> list[str]:
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
    if state_serial != plan.state_serial:
        reasons.append(
            f"the state changed since the plan was made (serial {plan.state_serial} -> "
            f"{state_serial}): another apply ran"
        )
    return reasons


def check_fresh(plan: Plan, state_serial: int, where: str) -> None:
    reasons = stale_reasons(plan, state_serial)
    if reasons:
        raise StalePlanError(
            f"the plan {where} is stale: " + "; ".join(reasons),
            hint="make a new plan (runner plan --out ...) and review it again",
        )
