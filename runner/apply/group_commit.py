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
from collections.abc import Iterable
from itertools import chain
from typing import Any

from runner.state import Fired, NewRun, StateStore

# How long a batch stays open for more writes. Every commit costs an fsync on the event
# loop's thread; waiting 2 ms (against the 20 ms or more a startRun takes) halves the
# commits of a large apply (1,000 runs: from about 300 to 140) and a tenth of its time.
GATHER_SECONDS = 0.002


class GroupCommit:
    """The journal's writes of the runs being fired: intents (before their startRun) and
    runCounters (after it), gathered and committed together."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._intents: list[tuple[NewRun, asyncio.Future[int]]] = []
        self._fired: list[tuple[Fired, asyncio.Future[None]]] = []
        self._scheduled = False

    async def intent(self, run: NewRun) -> int:
        """Record that ``run`` is about to be fired; its journal id, once committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._intents.append((run, future))
        self._schedule()
        return await future

    async def fired(self, fired: Fired) -> None:
        """Record a runCounter; returns once committed, or raises why it was refused
        (the runs committed with it are recorded all the same)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fired.append((fired, future))
        self._schedule()
        await future

    def _schedule(self) -> None:
        if not self._scheduled:
            # A moment later, so that the writes of the runs answered meanwhile join.
            self._scheduled = True
            asyncio.get_running_loop().call_later(GATHER_SECONDS, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        intents, self._intents = self._intents, []
        fired, self._fired = self._fired, []
        try:
            with self._store.batch("record runs"):
                run_ids = self._store.record_intents([run for run, _ in intents]) if intents else []
                refusals = self._store.record_fired_each([one for one, _ in fired]) if fired else []
        except Exception as error:  # the whole batch was rolled back
            _fail(chain((f for _, f in intents), (f for _, f in fired)), error)
            return
        for (_, intent), run_id in zip(intents, run_ids, strict=True):
            if not intent.done():
                intent.set_result(run_id)
        for (_, done), refusal in zip(fired, refusals, strict=True):
            if done.done():
                continue
            if refusal is None:
                done.set_result(None)
            else:
                done.set_exception(refusal)


def _fail(futures: Iterable[asyncio.Future[Any]], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
