"""``runner unlock``: remove an environment's lock, whoever holds it."""

from __future__ import annotations

from dataclasses import dataclass

from runner.state import (
    LockInfo,
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
    """Remove ``environment``'s lock, whoever holds it (the person asked for it)."""
    removed = store.force_unlock(environment)
    others = tuple(lock for lock in store.list_locks() if lock.environment != environment)
    return UnlockResult(environment, removed, others)
