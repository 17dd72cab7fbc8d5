"""The plan: an immutable value saying what apply would fire and how it differs from a baseline.

Built by :func:`runner.plan.builder.make_plan`, shown by ``runner.render``, saved by
``runner.plan.planfile`` and executed by ``runner.apply``. It holds no secret: every
request in it is the redacted form, with ``"(secret)"`` where a credential goes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from runner.identity import RunKey


class Action(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    # An earlier apply may have created it and Coalesce does not show it: apply refuses
    # the environment until `status --refresh` or `apply --resume` settles it.
    UNCERTAIN = "uncertain"


FIRES = (Action.NEW, Action.CHANGED, Action.UNCHANGED, Action.UNCERTAIN)


@dataclass(frozen=True)
class FieldChange:
    """One field of the request that differs; ``None`` means the field is absent."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class PlanWarning:
    """Something a reviewer should look at. ``fails`` marks a run that will be refused."""

    code: str
    message: str
    environment: str
    run: str | None = None
    fails: bool = False  # the run will be refused or fail as written


@dataclass(frozen=True)
class Selection:
    """What a run's selectors resolve to in the environment's current nodes (online plans)."""

    node_ids: tuple[str, ...]
    node_names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.node_ids)


@dataclass(frozen=True)
class PlannedJob:
    """The job a run refreshes, as a reviewer needs to see it: ``job "Nightly marts"
    (7)``, or ``jobID 7`` with the name and selectors Coalesce gives it."""

    id: str | None  # None: named in the spec, not resolved (an offline plan)
    name: str | None  # the spec's name, or Coalesce's for a job given by jobID
    by_name: bool  # the spec names it (``job:``) instead of giving its ID
    include_selector: str | None = None  # Coalesce's, when the plan read the job
    exclude_selector: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    environment: str
    batch: str
    name: str
    action: Action
    request: Mapping[str, Any]  # redacted startRun body
    changes: tuple[FieldChange, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    selection: Selection | None = None
    source: str = ""  # file:line where the run is written
    # Changes of fields the spec's ignoreChanges names: shown, not counted.
    ignored: tuple[FieldChange, ...] = ()
    job: PlannedJob | None = None

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))

    @property
    def request_hash(self) -> str:
        return request_hash(self.request)

    @property
    def fires(self) -> bool:
        return self.action in FIRES


@dataclass(frozen=True)
class BatchPlan:
    name: str
    max_concurrent: int | None
    on_failure: str
    runs: tuple[PlannedRun, ...]


@dataclass(frozen=True)
class EnvironmentPlan:
    name: str
    environment_id: str
    url: str
    path: str
    batches: tuple[BatchPlan, ...]
    removed: tuple[PlannedRun, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()  # about the environment as a whole
    status: str | None = None  # the environment's status in Coalesce, when read online
    offline_reason: str | None = None  # why it was not read online
    deployed_commit: str | None = None  # the commit Coalesce has deployed there, if it says

    def runs(self) -> Iterator[PlannedRun]:
        for batch in self.batches:
            yield from batch.runs

    def all_warnings(self) -> Iterator[PlanWarning]:
        yield from self.warnings
        for run in self.runs():
            yield from run.warnings

    def count(self, action: Action) -> int:
        if action is Action.REMOVED:
            return len(self.removed)
        return sum(1 for run in self.runs() if run.action is action)

    @property
    def has_changes(self) -> bool:
        return bool(self.removed) or any(r.action is not Action.UNCHANGED for r in self.runs())


@dataclass(frozen=True)
class Plan:
    environments: tuple[EnvironmentPlan, ...]
    baseline: str  # "state" or "git:<ref>"
    created_at: datetime
    # Each planned environment's state serial when the plan was made: one that moved
    # since means another apply ran there, and a saved plan of it is stale. ``None`` in
    # a plan file saved by a runner that kept one serial for the whole state.
    state_serials: Mapping[str, int] | None = field(default_factory=dict)
    spec_files: Mapping[str, str] = field(default_factory=dict)  # path -> sha256
    variables: Mapping[str, str] = field(default_factory=dict)
    tool_version: str = ""

    @property
    def state_serial(self) -> int:
        """One number for the state the plan was made against: the serials' sum."""
        return sum((self.state_serials or {}).values())

    def runs(self) -> Iterator[PlannedRun]:
        for environment in self.environments:
            yield from environment.runs()

    def count(self, action: Action) -> int:
        return sum(e.count(action) for e in self.environments)

    @property
    def has_changes(self) -> bool:
        return any(e.has_changes for e in self.environments)

    def warnings(self) -> Iterator[PlanWarning]:
        for environment in self.environments:
            yield from environment.all_warnings()

    def fingerprint(self) -> str:
        """A hash of what would be fired, recorded with the apply that fires it."""
        fired = [(r.identity, r.batch, r.request_hash) for r in self.runs()]
        return hashlib.sha256(json.dumps(fired).encode()).hexdigest()


def request_hash(request: Mapping[str, Any]) -> str:
    """A stable hash of a redacted request."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
