"""Waiting for runs with as few requests as the API allows.

One poller per environment: every interval it lists the environment's runs, newest
first, with one request (more pages only when the runs in flight span them), instead
of asking ``runStatus`` run by run. A run missing from the list is asked about alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from runner.coalesce import CoalesceClient, is_terminal
from runner.coalesce.urls import is_sim_url
from runner.errors import RunnerError

StatusCallback = Callable[[int, str], None]
Sleep = Callable[[float], Awaitable[None]]

MAX_FAILED_POLLS = 5
MAX_PAGE = 1000
# Coalesce itself is asked at most once a second; the simulator and servers on this
# machine may be polled as fast as a test or a demo likes.
MIN_COALESCE_INTERVAL = 1.0


def poll_interval_for(url: str, wanted: float) -> float:
    """The interval to poll ``url`` at when ``--poll-interval`` asks for ``wanted``."""
    if wanted >= MIN_COALESCE_INTERVAL or is_sim_url(url) or _is_loopback(url):
        return wanted
    return MIN_COALESCE_INTERVAL


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StatusPoller:
    def __init__(
        self,
        client: CoalesceClient,
        environment_id: str,
        *,
        interval: float,
        on_status: StatusCallback,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._environment_id = environment_id
        self._interval = interval
        self._on_status = on_status
        self._sleep = sleep
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._last: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.requests = 0

    @property
    def interval(self) -> float:
        """Seconds between two looks at the environment."""
        return self._interval

    def wait(self, run_counter: int) -> asyncio.Future[str]:
        """A future that resolves to the run's terminal status."""
        future = self._waiting.get(run_counter)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[run_counter] = future
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        return future

    def forget(self, run_counter: int) -> None:
        """Stop waiting for a run (its timeout passed, or apply was interrupted)."""
        future = self._waiting.pop(run_counter, None)
        if future is not None and not future.done():
            future.cancel()

    async def close(self) -> None:
        for counter in list(self._waiting):
            self.forget(counter)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        failures = 0
        while self._waiting:
            await self._sleep(self._interval)
            try:
                await self.poll_once()
                failures = 0
            except RunnerError as error:
                failures += 1
                if failures >= MAX_FAILED_POLLS:
                    self._fail_all(error)
                    return

    async def poll_once(self) -> None:
        pending = set(self._waiting)
        if not pending:
            return
        seen = await self._list_statuses(pending)
        for counter in sorted(pending - seen.keys()):
            self.requests += 1
            seen[counter] = (await self._client.run_status(counter)).runStatus
        for counter, status in seen.items():
            self._update(counter, status)

    async def _list_statuses(self, pending: set[int]) -> dict[int, str]:
        lowest = min(pending)
        page = min(MAX_PAGE, max(25, len(pending) * 2))
        seen: dict[int, str] = {}
        pages = self._client.iter_runs(
            environment_id=self._environment_id,
            order_by="id",
            order_by_direction="desc",
            page_size=page,
        )
        self.requests += 1
        counted = 0
        async for summary in pages:
            counted += 1
            if counted > page:  # the iterator fetched another page
                self.requests += 1
                counted = 1
            if summary.id in pending:
                seen[summary.id] = summary.runStatus
            if summary.id <= lowest:
                break
        return seen

    def _update(self, counter: int, status: str) -> None:
        if self._last.get(counter) != status:
            self._last[counter] = status
            self._on_status(counter, status)
        if is_terminal(status):
            future = self._waiting.pop(counter, None)
            if future is not None and not future.done():
                future.set_result(status)

    def _fail_all(self, error: RunnerError) -> None:
        for counter in list(self._waiting):
            future = self._waiting.pop(counter)
            if not future.done():
                future.set_exception(error)
