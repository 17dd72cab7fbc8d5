"""What apply is asked to do, what it reports while it works, and what it ends with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runner.apply.firing import Firing, firing_of
from runner.coalesce.requests import WriteRequest
from runner.identity import RunKey
from runner.secrets import Secret


class RunState(StrEnum):
    """A run's state as apply reports it (DESIGN §4, plus the in-flight ones)."""

    PENDING = "pending"  # not fired yet
    FIRING = "firing"  # startRun sent
    WAITING_TO_RUN = "waitingToRun"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    NOT_STARTED = "not-started"
    # startRun (or rerun) may have created it and Coalesce does not show it (yet): never
    # sent again on its own; `runner status --refresh` or `runner apply --resume` look again.
    UNCERTAIN = "uncertain"


class NotFired(StrEnum):
    """Why apply did not fire a run it was to fire: says what must change before the
    same command can fire it (see :data:`ONCE`)."""

    LOCK = "lock"  # another apply held the environment's lock
    ENVIRONMENT = "environment"  # Coalesce would refuse it as the environment stands
    SPEC = "spec"  # Coalesce refused the request as written
    TOKEN = "token"  # Coalesce did not accept the token
    UNREACHABLE = "unreachable"  # Coalesce did not answer, or answered 5xx/429
    STALE = "stale"  # the plan no longer held when the lock was ours
    UNCERTAIN = "uncertain"  # an earlier apply left runs there that may exist
    DEPLOYING = "deploying"  # Coalesce was still deploying the environment (--deploy-wait)
    RUNNING = "running"  # the same refresh was still running past the run's timeout
    ERROR = "error"  # anything else: the error reported with it


#: When the same runs can be fired again, by why they were not.
ONCE = {
    NotFired.LOCK: "once the lock is free",
    NotFired.ENVIRONMENT: "once the environment is redeployed",
    NotFired.SPEC: "once the spec is fixed",
    NotFired.TOKEN: "once the token is fixed",
    NotFired.UNREACHABLE: "once Coalesce is reachable",
    NotFired.STALE: "after reviewing the plan it shows",
    NotFired.UNCERTAIN: "once `runner status --refresh` has settled the uncertain runs",
    NotFired.DEPLOYING: "once Coalesce has finished deploying the environment",
    NotFired.RUNNING: "once the same refresh already running has ended",
    NotFired.ERROR: "once the error above is fixed",
}


ENDED = frozenset(
    {
        RunState.COMPLETED,
        RunState.FAILED,
        RunState.CANCELED,
        RunState.TIMEOUT,
        RunState.SKIPPED,
        RunState.NOT_STARTED,
        RunState.UNCERTAIN,
    }
)
UNSUCCESSFUL = ENDED - {RunState.COMPLETED}

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_RUN_FAILED = 3
EXIT_TIMEOUT = 4
EXIT_UNCERTAIN = 5
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RunJob:
    """One run to fire: the real request to send (a startRun or a rerun), and the
    secret-free request the journal keeps (for a run of a plan, the planned one)."""

    environment: str
    batch: str
    name: str
    request: WriteRequest  # with Secret objects: only the client reveals them
    redacted: Mapping[str, Any]
    request_hash: str
    timeout: float | None = None
    if_running: str = "wait"  # the same refresh already running in Coalesce: wait|skip|fire

    @property
    def firing(self) -> Firing:
        return firing_of(self.request)

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))


@dataclass(frozen=True)
class BatchJob:
    name: str
    max_concurrent: int | None
    on_failure: str
    runs: tuple[RunJob, ...]


@dataclass(frozen=True)
class EnvironmentJob:
    name: str
    environment_id: str
    url: str
    token: Secret
    token_source: str
    batches: tuple[BatchJob, ...]

    def runs(self) -> list[RunJob]:
        return [run for batch in self.batches for run in batch.runs]


@dataclass(frozen=True)
class ApplyOptions:
    max_concurrent: int = 10  # startRun calls in flight, all environments together
    no_wait: bool = False
    poll_interval: float = 10.0
    lock_timeout: float = 0.0
    lock_ttl: float = 120.0
    default_timeout: float | None = None  # per run, when the spec sets none
    holder: str | None = None  # who holds the locks; default "<user> (apply <id>)"
    # Each environment's state serial when the plan was made, when what apply fires
    # depends on it (a plan file, --changed-only): an environment applied by someone
    # else since, while this apply waited for its lock, is refused instead of fired
    # from a stale plan.
    plan_serials: Mapping[str, int] | None = None
    argv: tuple[str, ...] = ()
    git_commit: str | None = None
    # How long to keep looking in Coalesce for a run whose startRun answer was lost
    # (its run list may lag behind its creation) before reporting it uncertain.
    lookup_window: float = 120.0
    # Only with this (on --resume) is a run still uncertain after a last look fired anew.
    refire_uncertain: bool = False
    # Seconds to wait for an environment Coalesce is deploying (initializing, deleting)
    # before firing in it; 0 refuses at once.
    deploy_wait: float = 600.0
    # --if-running: what every run does when Coalesce already runs the same refresh,
    # instead of its spec's ifRunning.
    if_running: str | None = None


@dataclass(frozen=True)
class FailedNode:
    """A node of a run that did not complete: it failed (``error`` is why), or Coalesce
    skipped it because a node upstream of it failed (``skipped``; ``error`` is
    Coalesce's word on that)."""

    node_id: str | None
    name: str | None
    error: str
    skipped: bool = False

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "failed"

    @property
    def label(self) -> str:
        return self.name or self.node_id or "?"

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodeID": self.node_id,
            "name": self.name,
            "error": self.error,
            "status": self.status,
        }


def failed_only(nodes: Sequence[FailedNode]) -> list[FailedNode]:
    """The nodes that failed themselves."""
    return [node for node in nodes if not node.skipped]


def skipped_only(nodes: Sequence[FailedNode]) -> list[FailedNode]:
    """The nodes Coalesce skipped because a node upstream of them failed."""
    return [node for node in nodes if node.skipped]


@dataclass
class RunReport:
    """A run's progress; updated as apply learns more, frozen into the final result."""

    environment: str
    batch: str
    name: str
    state: RunState = RunState.PENDING
    run_counter: int | None = None
    run_link: str | None = None
    fired_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    message: str | None = None
    failed_nodes: list[FailedNode] = field(default_factory=list)
    journal_id: int | None = None
    not_fired: NotFired | None = None  # why, when it was not fired (not-started)

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def uncertain(self) -> bool:
        """startRun may have created it; nobody could tell."""
        return self.state is RunState.UNCERTAIN

    def elapsed(self, now: dt.datetime) -> float | None:
        if self.fired_at is None:
            return None
        return ((self.ended_at or now) - self.fired_at).total_seconds()


@dataclass(frozen=True)
class ApplyEvent:
    """Something a person watching should see: a run changed state, or a note."""

    kind: str  # "run" | "note" | "environment"
    environment: str
    run: RunReport | None = None
    message: str | None = None


EventSink = Callable[[ApplyEvent], None]


@dataclass(frozen=True)
class ApplyResult:
    apply_id: int
    runs: tuple[RunReport, ...]
    interrupted: bool = False
    errors: tuple[str, ...] = ()  # environment-level problems (refused, lock, API)
    # Environments whose runs were not fired because Coalesce was still deploying them
    # after --deploy-wait: apply gave up waiting (exit 4), which is not an error.
    gave_up: Mapping[str, str] = field(default_factory=dict)  # environment -> why
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def exit_code(self) -> int:
        """DESIGN §4. When several apply, the one that asks most of a person wins:
        interrupted (130), then a run whose creation is uncertain (5), then an error that
        kept runs from being fired (1), then a run (or an environment's deploy) apply gave
        up waiting for (4), then a failed, canceled or skipped run (3)."""
        states = {r.state for r in self.runs}
        if self.interrupted:
            return EXIT_INTERRUPTED
        if RunState.UNCERTAIN in states:
            return EXIT_UNCERTAIN
        unexplained = any(
            r.state is RunState.NOT_STARTED and r.environment not in self.gave_up for r in self.runs
        )
        if self.errors or unexplained:
            return EXIT_ERROR
        if self.gave_up or RunState.TIMEOUT in states:
            return EXIT_TIMEOUT
        if states & {RunState.FAILED, RunState.CANCELED, RunState.SKIPPED}:
            return EXIT_RUN_FAILED
        return EXIT_OK
