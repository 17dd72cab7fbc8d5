"""The values the state store hands out: immutable records of applies, runs and locks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from runner.identity import RunKey


class Outcome(StrEnum):
    """How an apply ended."""

    SUCCEEDED = "succeeded"  # every run completed
    FAILED = "failed"  # apply finished; some run failed, was canceled or was skipped
    TIMEOUT = "timeout"  # apply gave up waiting on a run
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: `apply --resume` continues it
    ERRORED = "errored"  # apply stopped on an error (API, auth, ...)


class RunStatus(StrEnum):
    """Where a run of the journal stands. The in-flight names are the API's own."""

    INTENT = "intent"  # written before startRun: it may or may not have reached the server
    AMBIGUOUS = "ambiguous"  # startRun was sent, its answer was lost
    WAITING_TO_RUN = "waitingToRun"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"  # apply stopped waiting; the run may still be going on the server
    SKIPPED = "skipped"  # an earlier batch failed with onFailure: stop
    NOT_STARTED = "not-started"  # apply ended (interrupt, error) before firing it


# Fired, not known to have ended: `runner status` and `runner cancel` look at these.
IN_FLIGHT_STATUSES = frozenset({RunStatus.WAITING_TO_RUN, RunStatus.RUNNING, RunStatus.TIMEOUT})
# Never sent to the server: these do not count as applied.
UNFIRED_STATUSES = frozenset({RunStatus.SKIPPED, RunStatus.NOT_STARTED})
# Maybe sent, outcome unknown: resume must look for them on the server before firing again.
UNCERTAIN_STATUSES = frozenset({RunStatus.INTENT, RunStatus.AMBIGUOUS})


def identity_of(environment: str, name: str) -> str:
    """A run's identity, ``<environment>/<run name>``."""
    return str(RunKey(environment, name))


@dataclass(frozen=True)
class ApplyRecord:
    """One apply: who started it, where, on what, and how it ended (``outcome`` is
    ``None`` while it runs, or forever if its process was killed)."""

    apply_id: int
    who: str
    host: str
    git_commit: str | None
    environments: tuple[str, ...]
    argv: tuple[str, ...]
    plan_hash: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome | None
    resumed: int  # how many times `apply --resume` continued it

    @property
    def finished(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True)
class RunRecord:
    """One run of the journal: its secret-free startRun body and what became of it.

    ``fired_at`` is when the server gave its runCounter; for a run whose outcome is
    uncertain it is ``None`` and ``intent_at`` is the best time known.
    """

    run_id: int
    apply_id: int
    environment: str
    batch: str
    name: str
    request: dict[str, Any]
    request_hash: str
    status: RunStatus
    run_counter: int | None
    run_link: str | None
    intent_at: datetime
    fired_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    failed_nodes: tuple[dict[str, Any], ...]
    message: str | None

    @property
    def identity(self) -> str:
        return identity_of(self.environment, self.name)

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT_STATUSES


# The plan baseline: the latest fired run of an identity.
AppliedRun = RunRecord


@dataclass(frozen=True)
class NewRun:
    """A run apply is about to fire (or decided not to), as the journal first records it:
    ``request`` is the secret-free startRun body."""

    apply_id: int
    environment: str
    batch: str
    name: str
    request: Mapping[str, Any]
    request_hash: str


class Fired(NamedTuple):
    """The runCounter Coalesce gave a run of the journal (and the link to it, if any)."""

    run_id: int
    run_counter: int
    run_link: str | None = None


# Why a journal write was refused: it changed nothing (a run fired twice, unknown, ...).
Refusal = ValueError | LookupError


@dataclass(frozen=True)
class LockInfo:
    """An environment's lock as stored; ``stale_reason`` says why it may be taken over
    (``None``: its holder looks alive)."""

    environment: str
    holder: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    ttl_seconds: float
    stale_reason: str | None

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    def describe(self) -> str:
        """``alice on build-7 (pid 4242) since 2024-05-01 12:00:00 UTC``."""
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.holder} on {self.host} (pid {self.pid}) since {since}"


@dataclass(frozen=True)
class LockToken:
    """Proof of holding an environment's lock; heartbeat and release need it.

    ``took_over`` is the stale lock this one replaced, so the caller can say so.
    """

    environment: str
    token: str
    holder: str
    host: str
    pid: int
    acquired_at: datetime
    ttl_seconds: float
    took_over: LockInfo | None = None
