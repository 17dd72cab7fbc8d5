"""Environment locks, whatever the backend: what the errors say, who the holder is, and
waiting for a lock.

When a lock is stale differs by backend. On SQLite (:func:`stale_reason`), when its
heartbeat is older than its ttl (its holder stopped beating, wherever it ran), or when
its holder ran on this host and its pid is gone. On PostgreSQL, when the database session
that held it has ended (:mod:`runner.state.postgres`). A stale lock is taken over on
acquire; a live one makes acquire raise :class:`EnvironmentLocked`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Protocol

from runner.errors import LockHeldError, RunnerError
from runner.state.records import LockInfo, LockToken


class EnvironmentLocked(LockHeldError):
    """Another apply holds the environment's lock; ``lock`` says who."""

    def __init__(self, lock: LockInfo, *, waited_seconds: float | None = None) -> None:
        waited = f" (waited {waited_seconds:g}s)" if waited_seconds is not None else ""
        super().__init__(
            f"environment {lock.environment!r} is locked by another apply: "
            f"{lock.describe()}{waited}",
            hint=(
                "wait for that apply to end (or pass --lock-timeout to wait for it); "
                f"if that process is dead, run `runner unlock {lock.environment}`"
            ),
        )
        self.lock = lock


class LockLostError(RunnerError):
    """Our lock was released, forced open or taken over while we still worked."""

    def __init__(self, token: LockToken, now_held_by: LockInfo | None) -> None:
        by = f"; it is now held by {now_held_by.describe()}" if now_held_by else ""
        super().__init__(
            f"lost the lock of environment {token.environment!r}{by}",
            hint=(
                "another process judged this apply dead (no heartbeat within "
                f"{token.ttl_seconds:g}s), its database session holding the lock ended, or "
                "someone ran `runner unlock`; stop firing and check `runner status` before "
                "trying again"
            ),
        )


def ci_run(environ: Mapping[str, str]) -> str | None:
    """The CI run this process belongs to, as a link, when the CI says (GitHub Actions:
    ``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_RUN_ID``)."""
    parts = [environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")]
    run_id = environ.get("GITHUB_RUN_ID")
    if not run_id:
        return None
    if all(parts):
        return f"{parts[0]}/{parts[1]}/actions/runs/{run_id}"
    return f"run {run_id}"


def holder_with_ci_run(holder: str, environ: Mapping[str, str]) -> str:
    """``holder``, followed by the CI run it belongs to, if any: what waiters and
    ``runner status`` show of a lock's holder."""
    run = ci_run(environ)
    return f"{holder}, CI {run}" if run else holder


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (any owner)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is someone else's
        return True
    return True


def stale_reason(
    *,
    host: str,
    pid: int,
    heartbeat_at: datetime,
    ttl_seconds: float,
    now: datetime,
    this_host: str,
    is_alive: Callable[[int], bool],
) -> str | None:
    """Why a lock may be taken over, or ``None`` if its holder looks alive."""
    silence = (now - heartbeat_at).total_seconds()
    if silence > ttl_seconds:
        return f"no heartbeat for {silence:.0f}s, longer than its {ttl_seconds:g}s ttl"
    if host == this_host and not is_alive(pid):
        return f"its process {pid} is no longer running on {host}"
    return None


class LockAcquirer(Protocol):
    def acquire_lock(
        self,
        environment: str,
        *,
        holder: str,
        host: str,
        pid: int,
        ttl_seconds: float,
        now: datetime | None = None,
    ) -> LockToken: ...


async def wait_for_lock_async(
    store: LockAcquirer,
    environment: str,
    *,
    holder: str,
    host: str,
    pid: int,
    ttl_seconds: float,
    timeout: float,
    sleep: Callable[[float], Awaitable[None]],
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[LockInfo], None] | None = None,
) -> LockToken:
    """Acquire ``environment``'s lock, retrying every ``poll`` seconds for up to
    ``timeout`` seconds (``--lock-timeout``; 0 tries once); pass ``sleep=asyncio.sleep``.

    ``on_wait`` is called once, with the holder, when the first try finds the lock held,
    so the caller can show who it is waiting for. On timeout it raises
    :class:`EnvironmentLocked` naming the holder at that moment.
    """
    started = clock()
    told = False
    while True:
        try:
            return store.acquire_lock(
                environment, holder=holder, host=host, pid=pid, ttl_seconds=ttl_seconds
            )
        except EnvironmentLocked as held:
            pause = _next_pause(started, clock(), timeout, poll)
            if pause is None:
                raise _timed_out(held, clock() - started, timeout) from None
            if on_wait is not None and not told:
                on_wait(held.lock)
                told = True
            await sleep(pause)


def _next_pause(started: float, now: float, timeout: float, poll: float) -> float | None:
    """How long to sleep before the next try, or ``None`` once ``timeout`` is spent."""
    remaining = timeout - (now - started)
    if remaining <= 0:
        return None
    return min(poll, remaining)


def _timed_out(held: EnvironmentLocked, waited: float, timeout: float) -> EnvironmentLocked:
    return EnvironmentLocked(held.lock, waited_seconds=waited if timeout > 0 else None)
