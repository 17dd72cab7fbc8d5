"""What the rest of runner may ask of the state: a read-only side (plan, status) and a
read-write side (apply, cancel, rerun, unlock).

Plan code takes a :class:`StateReader`, so a test can hand it a fake, and a plan on a
fresh checkout can use an empty one. :class:`~runner.state.sqlite.SqlState` is the
implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from runner.state.location import StateLocation
from runner.state.locks import LockAcquirer
from runner.state.records import (
    ApplyRecord,
    Fired,
    LockInfo,
    LockToken,
    NewRun,
    Outcome,
    Refusal,
    RunRecord,
    RunStatus,
)


class StateReader(Protocol):
    """Reading the record of applies, runs and locks."""

    @property
    def path(self) -> StateLocation: ...

    def serials(self, environments: Iterable[str]) -> dict[str, int]: ...

    def serial(self, environments: Iterable[str] | None = None) -> int: ...

    def get_apply(self, apply_id: int) -> ApplyRecord | None: ...

    def apply_plan(self, apply_id: int) -> dict[str, Any] | None: ...

    def run_counters(self, environment: str) -> set[int]: ...

    def last_apply(self, environment: str | None = None) -> ApplyRecord | None: ...

    def interrupted_apply(self, environment: str | None = None) -> ApplyRecord | None: ...

    def get_run(self, run_id: int) -> RunRecord | None: ...

    def runs_of_apply(self, apply_id: int) -> list[RunRecord]: ...

    def runs_in_flight(self, environment: str | None = None) -> list[RunRecord]: ...

    def last_applied_runs(
        self, environments: Iterable[str] | None = None
    ) -> dict[str, RunRecord]: ...

    def find_run(self, identity: str) -> RunRecord | None: ...

    def list_locks(self) -> list[LockInfo]: ...

    def close(self) -> None: ...


class StateStore(StateReader, LockAcquirer, Protocol):
    """Reading and writing: the apply journal and the environment locks (taking one:
    :class:`~runner.state.locks.LockAcquirer`)."""

    def begin_apply(
        self,
        *,
        who: str,
        host: str,
        git_commit: str | None,
        environments: Sequence[str],
        argv: Sequence[str],
        plan_hash: str | None = None,
        plan: Mapping[str, Any] | None = None,
    ) -> int: ...

    def resume_apply(self, apply_id: int) -> ApplyRecord: ...

    def finish_apply(self, apply_id: int, outcome: Outcome | str) -> None: ...

    def batch(self, doing: str = ...) -> AbstractContextManager[None]: ...

    def record_intent(
        self,
        apply_id: int,
        environment: str,
        batch: str,
        name: str,
        request: Mapping[str, Any],
        request_hash: str,
    ) -> int: ...

    def record_intents(self, runs: Sequence[NewRun]) -> list[int]: ...

    def record_unfired(
        self,
        apply_id: int,
        environment: str,
        batch: str,
        name: str,
        request: Mapping[str, Any],
        request_hash: str,
        status: RunStatus | str = RunStatus.SKIPPED,
        *,
        message: str | None = None,
    ) -> int: ...

    def record_fired(self, run_id: int, run_counter: int, run_link: str | None = None) -> None: ...

    def record_fired_each(self, fired: Sequence[Fired]) -> list[Refusal | None]: ...

    def record_ambiguous(self, run_id: int, reason: str) -> None: ...

    def record_status(
        self,
        run_id: int,
        status: RunStatus | str,
        *,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        failed_nodes: Sequence[Mapping[str, Any]] | None = None,
        message: str | None = None,
    ) -> None: ...

    def heartbeat(self, token: LockToken) -> None: ...

    def release_lock(self, token: LockToken) -> bool: ...

    def force_unlock(self, environment: str) -> LockInfo | None: ...

    @property
    def lock_poll_seconds(self) -> float: ...
