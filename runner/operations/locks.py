"""``runner unlock``: remove an environment's lock, whoever holds it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from runner.errors import RunnerError, did_you_mean, quoted, quoted_list
from runner.state import (
    LockInfo,
    StateLocation,
    StateStore,
)


@dataclass(frozen=True)
class UnlockResult:
    environment: str
    removed: LockInfo | None  # None: the environment was not locked
    others: tuple[LockInfo, ...] = ()  # the locks still held, to help with a typo

    @property
    def holder_may_be_running(self) -> bool:
        """The lock did not look stale: its apply may still be going."""
        return self.removed is not None and not self.removed.stale


def unlock(store: StateStore, environment: str) -> UnlockResult:
    """Remove ``environment``'s lock, whoever holds it (the person asked for it).

    An environment the state has never seen (no run applied, no lock) is most likely a
    typo, or the wrong state: a :class:`RunnerError` naming the ones it knows."""
    removed = store.force_unlock(environment)
    locks = store.list_locks()
    if removed is None:
        known = {lock.environment for lock in locks}
        known |= {record.environment for record in store.last_applied_runs().values()}
        if environment not in known:
            raise unknown_environment(environment, known, store.path)
    others = tuple(lock for lock in locks if lock.environment != environment)
    return UnlockResult(environment, removed, others)


def unknown_environment(
    environment: str, known: Collection[str], state: StateLocation
) -> RunnerError:
    if not known:
        return RunnerError(
            f"unknown environment {quoted(environment)}: nothing was ever applied with the state "
            f"at {state}, so nothing is locked",
            hint="check --state (or RUNNER_STATE): it must be the state the applies used",
        )
    meant = did_you_mean(environment, known)
    guess = f"did you mean {quoted(meant)}? " if meant else ""
    return RunnerError(
        f"unknown environment {quoted(environment)}: the state at {state} knows "
        f"{quoted_list(sorted(known))}",
        hint=f"{guess}runner status lists the environments and their locks",
    )
