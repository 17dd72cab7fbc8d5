"""The gate every request to Coalesce passes just before it is sent.

An interrupt (Ctrl-C, SIGTERM) must stop *all* sending at once: first tries, retries,
lookups, whatever task they run in. Cancelling tasks is not enough on its own (a task
started a moment later, or a retry loop that catches the cancellation's side effects,
could still send), so the client checks one shared :class:`SendGate` right before each
request leaves the process, and waits between retries with :meth:`SendGate.pause`, which
ends as soon as the gate closes. Once closed, a gate stays closed.

Requests already on the wire are not touched: the caller cancels its tasks if it wants
them gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from runner.errors import RunnerError

__all__ = ["SendGate", "SendingStopped"]


class SendingStopped(RunnerError):
    """A request was about to be sent after the gate closed (an interrupt); nothing left
    the process."""

    def __init__(self, method: str = "", path: str = "") -> None:
        what = f"{method} {path}".strip() or "the request"
        super().__init__(
            f"Stopped before sending {what} to Coalesce: sending was stopped (interrupted).",
            hint="Nothing more is sent after an interrupt; run the command again to continue.",
        )
        self.method = method
        self.path = path


class SendGate:
    """Open until :meth:`close`; then every send raises :class:`SendingStopped` and every
    :meth:`pause` ends at once.

    :meth:`close` may be called from a signal handler or from another thread.
    """

    def __init__(self) -> None:
        self._closed = False
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop all sending from now on, and end every :meth:`pause` in progress."""
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, set()
        for loop, waiter in waiters:
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                _release(waiter)
            else:
                loop.call_soon_threadsafe(_release, waiter)

    def check(self, method: str = "", path: str = "") -> None:
        """Raise :class:`SendingStopped` if the gate is closed."""
        if self._closed:
            raise SendingStopped(method, path)

    async def pause(
        self,
        seconds: float,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """Wait ``seconds`` (with ``sleep``, default ``asyncio.sleep``), or less: the wait
        ends as soon as the gate closes. Returns at once if it is already closed."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        released: asyncio.Future[None] = loop.create_future()
        entry = (loop, released)
        with self._lock:
            if self._closed:
                return
            self._waiters.add(entry)
        sleeper = asyncio.ensure_future((sleep or asyncio.sleep)(max(0.0, seconds)))
        try:
            await asyncio.wait({sleeper, released}, return_when=asyncio.FIRST_COMPLETED)
            if sleeper.done():
                sleeper.result()  # a failing sleep is the caller's to see
        finally:
            with self._lock:
                self._waiters.discard(entry)
            sleeper.cancel()
            released.cancel()


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
