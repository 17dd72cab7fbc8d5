"""Group commit: journal writes made at about the same time share one transaction.

Every intent must be committed before its startRun is sent, and every commit of the
state is fsynced (a power cut must not forget a run that was fired). Committed one by
one, those fsyncs dominate a large apply. Here a write waits only for the next commit:
while one batch is being committed in a worker thread, the writes that arrive queue up
and go together in the following one. Each caller still gets its own result, after its
write is durable, or the exception that kept the batch from committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from runner.state import StateStore

Write = Callable[[], Any]


class GroupCommit:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, write: Write) -> Any:
        """Run ``write`` (a call on the store) in the next committed batch."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await asyncio.to_thread(self._commit, [w for w, _ in batch])
            except Exception as error:  # the whole batch was rolled back
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _commit(self, writes: list[Write]) -> list[Any]:
        with self._store.batch("record runs"):
            return [write() for write in writes]
