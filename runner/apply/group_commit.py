"""Group commit: journal writes made at about the same time share one transaction.

Every intent must be committed before its startRun is sent, and every commit of the
state is fsynced (a power cut must not forget a run that was fired). Committed one by
one, those fsyncs dominate a large apply. Here the writes made while the event loop is
busy with other things queue up and go together in one transaction, committed when the
loop gets to it. Each caller still gets its own result, after its write is durable, or
the exception that kept the batch from committing.

The commit runs on the event loop's thread. In a worker thread it took ten times as long
while runs were being fired: sqlite hands the interpreter lock back and forth on every
statement, and each time the worker waited for the busy event loop to let go of it (4 ms
per commit of 16 writes, against 0.5 ms here, fsync included). The price: while a
commit waits on the disk, or on another process writing the same state file (sqlite
waits up to its busy timeout), no answer is read either. Both waits are short on a
local disk; a state file on a network filesystem makes every commit slow, wherever it
runs. On PostgreSQL the commit is a round trip to the database, made on the same thread
(the state's interface is synchronous), so a distant or slow database delays the loop
by that much per batch: keep the state near the machines that apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from runner.state import StateStore

Write = Callable[[], Any]

# How long a batch stays open for more writes. Every commit costs an fsync on the event
# loop's thread; waiting 2 ms (against the 20 ms or more a startRun takes) halves the
# commits of a large apply (1,000 runs: from about 300 to 140) and a tenth of its time.
GATHER_SECONDS = 0.002


class GroupCommit:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._scheduled = False

    async def write(self, write: Write) -> Any:
        """Run ``write`` (a call on the store) in the next committed batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((write, future))
        if not self._scheduled:
            # A moment later, so that the writes of the runs answered meanwhile join.
            self._scheduled = True
            loop.call_later(GATHER_SECONDS, self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        try:
            results = self._commit([w for w, _ in batch])
        except Exception as error:  # the whole batch was rolled back
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _commit(self, writes: list[Write]) -> list[Any]:
        with self._store.batch("record runs"):
            return [write() for write in writes]
