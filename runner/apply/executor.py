"""The executor: environments concurrently, batches in order, limits, waiting, the journal.

Every step that touches Coalesce is framed by journal writes, committed before the
request (the intent) and after the answer (the runCounter), so that an apply killed at
any point can be resumed without firing a run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from runner.apply.firing import Search
from runner.apply.group_commit import GroupCommit
from runner.apply.model import (
    EXIT_INTERRUPTED,
    UNSUCCESSFUL,
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    BatchJob,
    EnvironmentJob,
    EventSink,
    FailedNode,
    NotFired,
    RunJob,
    RunReport,
    RunState,
)
from runner.apply.poller import StatusPoller, poll_interval_for
from runner.apply.results import failed_nodes
from runner.coalesce import (
    Ambiguous,
    ClientPool,
    CoalesceAPIError,
    CoalesceClient,
    CoalesceUnreachable,
    Environment,
    EnvironmentJobs,
    RunInfo,
    SendingStopped,
    StartOutcome,
    StartRunRequest,
    read_jobs,
)
from runner.coalesce.jobs import id_text
from runner.coalesce.matching import same_refresh, since_text
from runner.errors import LockHeldError, RunnerError, quoted, quoted_list
from runner.shell import cancel_command
from runner.state import (
    UNCERTAIN_STATUSES,
    Fired,
    LockInfo,
    LockLostError,
    LockToken,
    NewRun,
    RunRecord,
    RunStatus,
    StateStore,
    holder_with_ci_run,
    utc_now,
    wait_for_lock_async,
)

FAILED_DEPLOY = "Failed Deploy"
#: Coalesce is changing the environment: a refresh fired now would run against a graph
#: that is being replaced, so apply waits for the status to leave these (--deploy-wait).
BUSY_STATUSES = frozenset({"Deploying", "Initializing", "Deleting"})
# After an interrupt, how long answers already on their way may still arrive (a run
# whose answer comes in time is recorded with its runCounter) before everything still
# waiting is cancelled, so that the process ends within seconds whatever the server does.
INTERRUPT_GRACE = 2.0
# Waits between two looks for a run whose answer was lost: 1, 2, 4 ... up to this.
MAX_LOOKUP_PAUSE = 15.0
Sleep = Callable[[float], Awaitable[None]]


class LockWaitInterrupted(RunnerError):
    """An interrupt ended a wait for an environment's lock."""

    exit_code = EXIT_INTERRUPTED


def pause_until(stop: asyncio.Event) -> Sleep:
    """The pause between two tries for a lock: ``stop`` ends it at once, raising
    :class:`LockWaitInterrupted`."""

    async def pause(seconds: float) -> None:
        waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()
        if stop.is_set():
            raise LockWaitInterrupted("interrupted while waiting for a lock: nothing was fired")

    return pause


@dataclass
class _Environment:
    """What one environment's part of the apply works with."""

    job: EnvironmentJob
    client: CoalesceClient
    poller: StatusPoller
    floor: int = 0  # runs this apply creates have larger ids
    claimed: set[int] = field(default_factory=set)
    by_counter: dict[int, RunReport] = field(default_factory=dict)
    reconciling: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Where Coalesce's run pages are: learnt from a runLink it gave, else its app URL.
    link_base: str | None = None
    # Runs Coalesce was running or about to run when apply began here (anyone's but this
    # apply's own), each taken by the first planned run that refreshes the same thing.
    running: list[RunInfo] = field(default_factory=list)
    # Why nothing more may be fired here (a resumed apply whose plan went stale); what
    # the interrupted apply fired is still followed to its end.
    stale: str | None = None

    def take_twin(self, run: RunJob) -> RunInfo | None:
        """The run already in Coalesce that refreshes what ``run`` would, if any."""
        if not isinstance(run.request, StartRunRequest):
            return None  # a rerun runs what failed in its own run: nothing to stack on
        for info in self.running:
            if same_refresh(info, run.redacted):
                self.running.remove(info)
                return info
        return None

    def run_link(self, run_counter: int) -> str:
        """The link to a run's page, built without asking Coalesce (a run page is
        ``<app URL>/runs/<runCounter>``), so that completed runs get one too."""
        return f"{self.link_base or self.client.link_base}/runs/{run_counter}"

    def learn_link(self, link: str | None, run_counter: int) -> None:
        suffix = f"/runs/{run_counter}"
        if link and link.endswith(suffix):
            self.link_base = link.removesuffix(suffix)


class Executor:
    """Runs one apply. ``previous`` is the journal of an interrupted apply being resumed:
    the latest record of each run identity. ``locks`` are environment locks taken for
    this apply beforehand (see :func:`take_locks`); the executor waits for the others
    itself, and releases them all. Setting ``stop`` interrupts it (see :meth:`interrupt`)."""

    def __init__(
        self,
        jobs: Sequence[EnvironmentJob],
        *,
        store: StateStore,
        pool: ClientPool,
        apply_id: int,
        options: ApplyOptions,
        sink: EventSink,
        previous: Mapping[str, RunRecord] | None = None,
        floors: Mapping[str, int] | None = None,
        locks: Mapping[str, LockToken] | None = None,
        stop: asyncio.Event | None = None,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._jobs = list(jobs)
        self._store = store
        self._pool = pool
        self._apply_id = apply_id
        self._options = options
        self._sink = sink
        self._previous = dict(previous or {})
        self._floors = dict(floors or {})
        self._locks = dict(locks or {})
        self._sleep = sleep
        self._now = now
        self._stop = stop or asyncio.Event()
        self._fire_slots = asyncio.Semaphore(options.max_concurrent)
        self._journal = GroupCommit(store)
        self._errors: list[str] = []
        self._gave_up: dict[str, str] = {}
        self.reports = {
            run.identity: RunReport(run.environment, run.batch, run.name)
            for job in self._jobs
            for run in job.runs()
        }
        self.status_requests = 0

    # -- control ------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop firing and stop waiting; runs already fired keep running in Coalesce."""
        self._stop.set()

    @property
    def interrupted(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> ApplyResult:
        started = self._now()
        everything: asyncio.Future[Any] = asyncio.gather(
            *(self._environment(job) for job in self._jobs)
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({everything, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not everything.done():
                await self._wind_down(everything)
            elif not everything.cancelled():
                everything.result()  # a bug in an environment's task is not swallowed
        finally:
            stopped.cancel()
        return ApplyResult(
            apply_id=self._apply_id,
            runs=tuple(self.reports.values()),
            interrupted=self._stop.is_set(),
            errors=tuple(self._errors),
            gave_up=dict(self._gave_up),
            started_at=started,
            finished_at=self._now(),
        )

    async def _wind_down(self, everything: asyncio.Future[Any]) -> None:
        """After an interrupt: nothing more is sent (the pool's gate closes), answers
        already on their way get :data:`INTERRUPT_GRACE` seconds, then whatever still
        waits is cancelled. A run whose startRun was sent and not answered is uncertain."""
        self._pool.gate.close()
        # A little longer than a send's own grace, so that a run whose answer did not
        # come is journaled as such by its own task before anything is cancelled.
        await asyncio.wait({everything}, timeout=INTERRUPT_GRACE + 1.0)
        if everything.done():
            return
        everything.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await everything
        for report in self.reports.values():
            if report.state is RunState.FIRING:
                report.message = (
                    "apply was interrupted while startRun was on its way; whether Coalesce "
                    f"created the run is unknown: {_LOOK_AGAIN}"
                )
                self._set(report, RunState.UNCERTAIN)
            elif report.state is RunState.PENDING:
                report.message = "not fired: apply was interrupted"
                self._set(report, RunState.NOT_STARTED)

    # -- one environment ---------------------------------------------------------------

    async def _environment(self, job: EnvironmentJob) -> None:
        token = self._locks.get(job.name) or await self._lock(job)
        if token is None:
            return
        if token.took_over is not None:
            self._note(job.name, f"took over a stale lock: {token.took_over.stale_reason}")
        heartbeat = asyncio.create_task(self._heartbeat(token, job))
        client = self._pool.client(job.url, job.token, token_source=job.token_source)
        interval = poll_interval_for(job.url, self._options.poll_interval)
        if interval != self._options.poll_interval:
            self._note(job.name, f"polling Coalesce every {interval:g}s, its lowest interval")
        env = _Environment(
            job,
            client,
            StatusPoller(
                client,
                job.environment_id,
                interval=interval,
                on_status=lambda counter, status: self._on_status(env, counter, status),
                sleep=self._sleep,
            ),
        )
        try:
            pending = self._uncertain_pending(job)
            if pending is not None:
                # Nothing of this apply to resume.
                self._refuse(job, pending, journal=False, cause=NotFired.UNCERTAIN)
                return
            stale = self._moved_since_plan(job)
            if stale is not None:
                self._refuse(job, stale, journal=True, cause=NotFired.STALE)
                return
            info = await self._settled(env)
            if info is None:
                return  # gave up waiting, or interrupted: its runs are closed
            moved = await self._jobs_moved(env)
            if moved is not None and not self._previous:
                self._refuse(job, moved, journal=True, cause=NotFired.STALE)
                return
            if moved is not None:
                # Resumed: the runs the first attempt fired are followed to their end;
                # nothing new is fired (see _start).
                self._say_refused(job, moved)
                env.stale = moved
            refusal = await self._preflight(env, info)
            if refusal is not None:
                self._refuse(job, refusal, journal=True, cause=NotFired.ENVIRONMENT)
                return
            await self._batches(env)
        except RunnerError as error:
            self._errors.append(f"{quoted(job.name)}: {error}")
            self._note(job.name, f"error: {error}")
            self._close_unfired(
                job, RunState.NOT_STARTED, f"not fired: {error.message}", not_fired_by(error)
            )
        finally:
            heartbeat.cancel()
            self.status_requests += env.poller.requests
            await env.poller.close()
            release_locks(self._store, [token])

    async def _lock(self, job: EnvironmentJob) -> LockToken | None:
        """The environment's lock, waited for as the options say; ``None`` if it was
        not to be had (its runs are then reported as not started)."""
        try:
            return await wait_for_lock(
                self._store,
                job.name,
                self._options,
                holder=self._options.holder or f"apply {self._apply_id}",
                sleep=pause_until(self._stop),
                on_wait=lambda lock: self._note(
                    job.name, f"waiting for the lock held by {lock.describe()}"
                ),
            )
        except LockHeldError as error:
            self._refuse(job, str(error), journal=False, cause=NotFired.LOCK)
        except LockWaitInterrupted:
            for run in job.runs():  # not journaled: the lock is not ours
                report = self.reports[run.identity]
                report.message = "not fired: apply was interrupted while waiting for the lock"
                self._set(report, RunState.NOT_STARTED)
        return None

    async def _heartbeat(self, token: LockToken, job: EnvironmentJob) -> None:
        while True:
            await self._sleep(max(self._options.lock_ttl / 3, 0.05))
            try:
                self._store.heartbeat(token)
            except LockLostError as error:
                self._errors.append(f"{quoted(job.name)}: {error}")
                self._note(job.name, f"error: {error}; stopping")
                self.interrupt()
                return

    def _moved_since_plan(self, job: EnvironmentJob) -> str | None:
        """Why the plan no longer holds for this environment, now that its lock is ours."""
        serials = self._options.plan_serials
        if serials is None or job.name not in serials or self._previous:
            return None
        planned = serials[job.name]
        now = self._store.serials([job.name])[job.name]
        if now == planned:
            return None
        return (
            f"another apply ran in {quoted(job.name)} after the plan was made (state serial "
            f"{planned} -> {now}), while this one waited for its lock. The plan is stale, "
            "so nothing was fired here: make a new plan and review it again"
        )

    async def _jobs_moved(self, env: _Environment) -> str | None:
        """Why the plan's job IDs no longer hold: a job the spec names has come to mean
        another job, or none, since the plan resolved it. A resumed apply checks the runs
        its first attempt never reached (those it did are settled by what was sent)."""
        named = [
            run.request
            for run in env.job.runs()
            if isinstance(run.request, StartRunRequest)
            and run.request.job_name is not None
            and run.identity not in self._previous
        ]
        if not named:
            return None
        jobs = await read_jobs(env.client, env.job.environment_id)
        moved = [_job_moved(request, jobs) for request in named]
        found = sorted({text for text in moved if text is not None})
        if not found:
            return None
        return (
            f"the jobs of environment {env.job.environment_id} changed since the plan was "
            f"made: {'; '.join(found)}. The plan is stale, so nothing was fired here: make a "
            "new plan and review it again"
        )

    def _uncertain_pending(self, job: EnvironmentJob) -> str | None:
        """Why a new apply must not fire in ``job``'s environment (checked again now that
        its lock is ours): see :func:`uncertain_pending`."""
        return None if self._previous else uncertain_pending(self._store, job.name)

    async def _preflight(self, env: _Environment, info: Environment) -> str | None:
        """Why Coalesce would refuse this environment's runs, before any is fired."""
        job = env.job
        if info.status == FAILED_DEPLOY:
            unforced = [r.name for r in job.runs() if not r.request.forced]
            if unforced:
                return (
                    f"environment {job.environment_id} is in Failed Deploy, so Coalesce would "
                    f"refuse {quoted_list(unforced)} (no "
                    "forceIgnoreEnvironmentStatus). Nothing "
                    "was fired here: redeploy the environment, or set "
                    "forceIgnoreEnvironmentStatus: true on those runs"
                )
        env.claimed = self._store.run_counters(job.name)
        ours = {r.run_counter for r in self._previous.values() if r.run_counter is not None}
        env.running = [
            info for info in await env.client.active_runs(job.environment_id) if info.id not in ours
        ]
        floor = self._floors.get(job.name) or 0
        if not self._previous:
            # Read again now that the lock is ours: runs fired meanwhile by the apply we
            # waited for (even ones it never recorded) are older than anything of ours.
            floor = max(floor, await newest_run_id(env.client, job.environment_id))
        env.floor = floor
        return None

    async def _settled(self, env: _Environment) -> Environment | None:
        """The environment once Coalesce is not deploying, initializing or deleting it,
        looked at every poll interval for up to ``--deploy-wait`` seconds; ``None`` if it
        still was or apply was interrupted (its runs are then closed as not fired)."""
        job, budget = env.job, self._options.deploy_wait
        waited = 0.0
        while True:
            info = await env.client.get_environment(job.environment_id)
            status = info.status or ""
            if status not in BUSY_STATUSES:
                return info
            if waited >= budget:
                self._give_up(job, status, waited)
                return None
            if waited == 0:
                self._note(
                    job.name,
                    f"environment {job.environment_id} is {status}: waiting up to "
                    f"{budget:g}s (--deploy-wait) for it to finish before firing",
                )
            step = min(env.poller.interval, budget - waited)
            if await self._stopped_within(step):
                for run in job.runs():
                    self._unfired(run, RunState.NOT_STARTED, "not fired: apply was interrupted")
                return None
            waited += step

    async def _stopped_within(self, seconds: float) -> bool:
        """Pause ``seconds``, or less if apply is interrupted meanwhile; whether it was."""
        pause = asyncio.ensure_future(self._sleep(seconds))
        try:
            return await self._stopped_before(pause) or self._stop.is_set()
        finally:
            pause.cancel()

    async def _stopped_before(self, awaited: asyncio.Future[Any]) -> bool:
        """Wait for ``awaited``, unless apply is interrupted first; whether it was (then
        ``awaited`` is left to the caller, not done)."""
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({awaited, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        return not awaited.done()

    def _give_up(self, job: EnvironmentJob, status: str, waited: float) -> None:
        """Close the environment's runs as not fired: it was busy for longer than apply
        was told to wait. Exit code 4 (gave up waiting), not an error: deploying first
        and refreshing after is the usual order, and it was only too slow."""
        reason = (
            f"environment {job.environment_id} was still {status} after {waited:g}s "
            "(--deploy-wait); nothing was fired here: apply again once the deploy is done, "
            "or wait longer with --deploy-wait"
        )
        self._gave_up[job.name] = reason
        self._note(job.name, f"gave up: {reason}")
        for run in job.runs():
            self._unfired(run, RunState.NOT_STARTED, f"not fired: {reason}", NotFired.DEPLOYING)

    async def _batches(self, env: _Environment) -> None:
        stop_reason: str | None = None
        batches = env.job.batches
        for index, batch in enumerate(batches):
            if stop_reason is None and self._stop.is_set():
                stop_reason = "not fired: apply was interrupted"
            if stop_reason is not None:
                state = RunState.NOT_STARTED if self._stop.is_set() else RunState.SKIPPED
                for run in batch.runs:
                    self._unfired(run, state, stop_reason)
                continue
            wait = not (self._options.no_wait and index == len(batches) - 1)
            await self._batch(env, batch, wait)
            failed = [r for r in batch.runs if self.reports[r.identity].state in UNSUCCESSFUL]
            if failed and batch.on_failure == "stop":
                stop_reason = (
                    f"skipped: {quoted(failed[0].name)} in batch {quoted(batch.name)} did not "
                    "complete (onFailure: stop)"
                )

    async def _batch(self, env: _Environment, batch: BatchJob, wait: bool) -> None:
        slots = asyncio.Semaphore(batch.max_concurrent) if batch.max_concurrent else None
        queued = [len(batch.runs)]

        async def one(run: RunJob) -> None:
            async with slots or contextlib.nullcontext():
                queued[0] -= 1
                try:
                    fired = await self._start(env, run)
                    # Under --no-wait a run is still waited for while others of its batch
                    # queue behind maxConcurrent: the limit is about runs in flight.
                    if fired and (wait or (slots is not None and queued[0] > 0)):
                        await self._wait(env, run)
                except RunnerError as error:
                    # One run's trouble is that run's: its siblings go on (an exception
                    # out of gather would leave them firing with nobody waiting).
                    self._run_error(run, error)

        await asyncio.gather(*(one(run) for run in batch.runs))

    # -- one run -----------------------------------------------------------------------

    async def _start(self, env: _Environment, run: RunJob) -> bool:
        """Fire ``run`` (or pick it up where an interrupted apply left it); True if fired."""
        report = self.reports[run.identity]
        previous = self._previous.get(run.identity)
        if previous is not None and self._adopt(env, report, previous):
            return report.run_counter is not None and not report.ended
        if previous is not None and previous.status in UNCERTAIN_STATUSES:
            # The interrupted apply may have fired it: look before anything else. Not
            # found is no proof that it was not created: only --refire-uncertain fires it.
            found, why = await self._look_for_lost(env, run)
            if found is not None:
                self._note(
                    run.environment,
                    f"{quoted(run.name)}: the interrupted apply fired it as run {found}",
                )
                await self._fired(env, run, found)
                return True
            if not self._options.refire_uncertain:
                self._uncertain(run, f"an earlier apply may have fired it and {why}")
                return False
            self._note(
                run.environment, f"{quoted(run.name)}: {why}; firing it anew (--refire-uncertain)"
            )
        if env.stale is not None:
            self._unfired(run, RunState.NOT_STARTED, f"not fired: {env.stale}", NotFired.STALE)
            return False
        if not await self._clear_of_twin(env, run):
            return False
        if self._stop.is_set():
            self._unfired(run, RunState.NOT_STARTED, "not fired: apply was interrupted")
            return False
        async with self._fire_slots:
            if self._stop.is_set():
                self._unfired(run, RunState.NOT_STARTED, "not fired: apply was interrupted")
                return False
            if report.journal_id is None:
                # Committed with the intents of the runs fired alongside (one fsync); the
                # request below waits for the commit.
                report.journal_id = await self._journal.intent(
                    NewRun(
                        self._apply_id,
                        run.environment,
                        run.batch,
                        run.name,
                        dict(run.redacted),
                        run.request_hash,
                    )
                )
            self._set(report, RunState.FIRING)
            counter = await self._fire(env, run, report)
        if counter is None:
            return False
        await self._fired(env, run, counter)
        return True

    async def _clear_of_twin(self, env: _Environment, run: RunJob) -> bool:
        """Whether ``run`` may be fired as far as runs already in Coalesce go: no two
        identical refreshes are stacked by accident. ``ifRunning`` (or --if-running) says
        what to do about one: wait for it to end, skip this run, or fire anyway."""
        twin = env.take_twin(run)
        if twin is None:
            return True
        mode = self._options.if_running or run.if_running
        running = f"already running as run {twin.id}{since_text(twin.runStartTime)}"
        if mode == "fire":
            self._note(
                run.environment, f"{quoted(run.name)}: {running}; firing anyway (ifRunning: fire)"
            )
            return True
        if mode == "skip":
            self._unfired(run, RunState.SKIPPED, f"skipped: {running} (ifRunning: skip)")
            return False
        self._note(
            run.environment,
            f"{quoted(run.name)}: {running}; waiting for it to end (ifRunning: wait)",
        )
        return await self._wait_for_twin(env, run, twin.id)

    async def _wait_for_twin(self, env: _Environment, run: RunJob, twin: int) -> bool:
        """Wait for run ``twin`` to end, for at most the run's own timeout; whether
        ``run`` may be fired now (if not, it is closed as not fired)."""
        ended = env.poller.wait(twin)
        limit = run.timeout or self._options.default_timeout
        awaited: set[asyncio.Future[Any]] = {ended}
        deadline = asyncio.ensure_future(self._sleep(limit)) if limit else None
        if deadline is not None:
            awaited.add(deadline)
        first = asyncio.ensure_future(asyncio.wait(awaited, return_when=asyncio.FIRST_COMPLETED))
        try:
            stopped = await self._stopped_before(first)
        finally:
            first.cancel()
            if deadline is not None:
                deadline.cancel()
        if stopped or not ended.done():
            env.poller.forget(twin)
            if stopped:
                self._unfired(run, RunState.NOT_STARTED, "not fired: apply was interrupted")
            else:
                self._give_up_on_twin(run, twin, limit)
            return False
        try:
            status = ended.result()
        except RunnerError as error:
            self._unfired(
                run, RunState.NOT_STARTED, f"not fired: {error.message}", not_fired_by(error)
            )
            self._errors.append(f"{quoted(run.identity)}: {error}")
            return False
        self._note(run.environment, f"{quoted(run.name)}: run {twin} ended ({status}); firing")
        return True

    def _give_up_on_twin(self, run: RunJob, twin: int, waited: float | None) -> None:
        reason = (
            f"run {twin}, the same refresh, was still going after {waited:g}s (the run's "
            "timeout); nothing was fired for it: apply again once it has ended"
        )
        self._gave_up.setdefault(run.environment, f"{quoted(run.name)}: {reason}")
        self._unfired(run, RunState.NOT_STARTED, f"not fired: {reason}", NotFired.RUNNING)

    async def _fire(self, env: _Environment, run: RunJob, report: RunReport) -> int | None:
        """Send the run's request once. Whatever happens, it is never sent again here: a
        lost answer is looked for in Coalesce, and the run is uncertain if not found."""
        assert report.journal_id is not None
        firing = run.firing
        try:
            outcome = await self._unless_interrupted(env.client.fire(run.request))
        except SendingStopped:
            self._store.record_status(
                report.journal_id, RunStatus.NOT_STARTED, message="apply was interrupted"
            )
            report.message = "not fired: apply was interrupted"
            self._set(report, RunState.NOT_STARTED)
            return None
        except CoalesceAPIError as error:
            self._store.record_status(
                report.journal_id, RunStatus.NOT_STARTED, message=error.message
            )
            report.message = str(error)
            report.not_fired = not_fired_by(error)
            self._set(report, RunState.NOT_STARTED)
            return None
        if outcome is not None and not isinstance(outcome, Ambiguous):
            return outcome.run_counter
        reason = (
            "apply was interrupted before the answer came" if outcome is None else (outcome.reason)
        )
        note = firing.journal_note
        self._store.record_ambiguous(report.journal_id, f"{note}: {reason}" if note else reason)
        if outcome is None:
            self._uncertain(run, f"{run.request.endpoint} was sent and {reason}")
            return None
        self._note(
            run.environment,
            f"{quoted(run.name)}: {reason}; looking for the {firing.noun} in Coalesce",
        )
        found, why = await self._look_for_lost(env, run)
        if found is not None:
            self._note(run.environment, f"{quoted(run.name)}: found it as run {found}")
            return found
        self._uncertain(run, f"{run.request.endpoint}'s answer was lost ({reason}) and {why}")
        return None

    async def _unless_interrupted(self, sending: Awaitable[StartOutcome]) -> StartOutcome | None:
        """The outcome of ``sending``, or ``None`` if an interrupt came and the answer did
        not follow within :data:`INTERRUPT_GRACE` seconds."""
        task = asyncio.ensure_future(sending)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=INTERRUPT_GRACE)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
            return task.result()
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()

    async def _look_for_lost(self, env: _Environment, run: RunJob) -> tuple[int | None, str]:
        """Look for the run in Coalesce, again and again with growing pauses, for up to
        ``lookup_window`` seconds (Coalesce's run list may lag behind its creation):
        its runCounter, or ``None`` and why it was not found."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self._options.lookup_window, 0.0)
        pause = 1.0
        looks = 0
        problem: str | None = None
        while True:
            looks += 1
            try:
                found = await self._find(env, run)
            except SendingStopped:
                return None, "apply was interrupted while looking for it"
            except RunnerError as error:
                found, problem = None, error.message
            if found is not None:
                return found, ""
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stop.is_set():
                break
            await self._pool.gate.pause(min(pause, remaining))
            pause = min(pause * 2, MAX_LOOKUP_PAUSE)
        window = f"{self._options.lookup_window:g} s"
        why = f"Coalesce did not show it ({looks} look{'s' if looks > 1 else ''} over {window})"
        if problem is not None:
            why += f"; the last look failed: {problem}"
        return None, why

    async def _find(self, env: _Environment, run: RunJob) -> int | None:
        async with env.reconciling:  # two identical requests must not claim one run
            search = Search(env.job.environment_id, env.floor, env.claimed)
            found = await run.firing.find_lost(env.client, run.redacted, search)
            if found is not None:
                env.claimed.add(found)
            return found

    async def _fired(self, env: _Environment, run: RunJob, counter: int) -> None:
        report = self.reports[run.identity]
        assert report.journal_id is not None
        try:
            await self._journal.fired(Fired(report.journal_id, counter))
        except (ValueError, LookupError) as refused:
            # Another process recorded this run otherwise meanwhile: the run exists in
            # Coalesce, the journal does not say so. Never fired again on its own; this
            # run's trouble, not its siblings'.
            self._not_recorded(report, counter, f"the journal refused to record that ({refused})")
            raise RunnerError(
                f"Coalesce started it as runCounter {counter}, but the journal refused to "
                f"record that: {refused}",
                hint=f"look at runCounter {counter} in Coalesce; `runner status` shows what "
                "the journal holds (another apply or a `status --refresh` wrote it)",
            ) from None
        except RunnerError as error:
            # The state failed: the journal still says "intent", and `--resume` will find
            # the run in Coalesce. It was fired all the same: never report it as not.
            self._not_recorded(report, counter, f"the journal could not record that ({error})")
            raise
        if run.firing.journal_note:
            self._store.record_status(
                report.journal_id, RunStatus.WAITING_TO_RUN, message=run.firing.journal_note
            )
        env.claimed.add(counter)
        env.by_counter[counter] = report
        report.run_counter = counter
        report.fired_at = self._now()
        self._set(report, RunState.WAITING_TO_RUN)

    def _not_recorded(self, report: RunReport, counter: int, why: str) -> None:
        """A run Coalesce started whose runCounter the journal does not hold."""
        report.run_counter = counter
        report.message = f"uncertain: Coalesce started it as runCounter {counter}, but {why}"
        self._set(report, RunState.UNCERTAIN)

    def _adopt(self, env: _Environment, report: RunReport, previous: RunRecord) -> bool:
        """Take over what an interrupted apply recorded; False if the run is still to fire."""
        status = previous.status
        if status in (RunStatus.SKIPPED, RunStatus.NOT_STARTED):
            return False
        report.journal_id = previous.run_id
        if status in (RunStatus.INTENT, RunStatus.AMBIGUOUS):
            return False  # _start looks for it in Coalesce before firing again
        assert previous.run_counter is not None
        report.run_counter = previous.run_counter
        report.run_link = previous.run_link
        report.fired_at = previous.fired_at
        report.ended_at = previous.ended_at
        env.by_counter[previous.run_counter] = report
        if status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED):
            report.state = RunState(status.value)
            report.failed_nodes = [_node_from_record(n) for n in previous.failed_nodes]
            if status is not RunStatus.COMPLETED:
                report.message = previous.message  # e.g. why its failed nodes are missing
        else:
            report.state = (
                RunState.RUNNING if status is RunStatus.RUNNING else RunState.WAITING_TO_RUN
            )
        self._sink(ApplyEvent("run", report.environment, report, "resumed"))
        return True

    async def _wait(self, env: _Environment, run: RunJob) -> None:
        report = self.reports[run.identity]
        counter = report.run_counter
        assert counter is not None and report.journal_id is not None
        future = env.poller.wait(counter)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        timeout = run.timeout or self._options.default_timeout
        remaining = None
        if timeout is not None:
            elapsed = report.elapsed(self._now()) or 0.0
            remaining = max(timeout - elapsed, 0.0)
        try:
            waiting: set[asyncio.Future[Any]] = {future, stop}
            done, _ = await asyncio.wait(
                waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if future in done and not future.cancelled():
            error = future.exception()
            if error is not None:
                # Apply gave up waiting, as on a timeout: the run may still be going.
                why = error.message if isinstance(error, RunnerError) else str(error)
                self._store.record_status(
                    report.journal_id, RunStatus.TIMEOUT, message=f"lost track: {why}"
                )
                report.message = (
                    f"lost track of the {run.firing.noun} ({why}); apply stopped waiting for "
                    f"it: see `runner status`, or cancel it with: {cancel_command(run.identity)}"
                )
                self._note(run.environment, f"{quoted(run.name)}: {report.message}")
                self._set(report, RunState.TIMEOUT)
                return
            await self._ended(env, report, future.result())
            return
        env.poller.forget(counter)
        if not self._stop.is_set():
            self._store.record_status(
                report.journal_id, RunStatus.TIMEOUT, message="apply stopped waiting"
            )
            report.message = (
                f"still running after {timeout:g}s; apply stopped waiting "
                f"(cancel it with: {cancel_command(run.identity)})"
            )
            self._set(report, RunState.TIMEOUT)

    async def _ended(self, env: _Environment, report: RunReport, status: str) -> None:
        assert report.run_counter is not None and report.journal_id is not None
        nodes: list[dict[str, Any]] = []
        if status != RunState.COMPLETED:
            try:
                results = await env.client.run_results(report.run_counter)
            except RunnerError as error:
                # The run's status stands; only the detail is missing. Say so, never silence.
                report.message = (
                    f"its failed nodes could not be read ({error.message}); see them in "
                    f"Coalesce, run {report.run_counter}"
                )
            else:
                report.failed_nodes = failed_nodes(results)
                nodes = [n.as_dict() for n in report.failed_nodes]
            with contextlib.suppress(RunnerError):
                report.run_link = (await env.client.run_status(report.run_counter)).runLink
                env.learn_link(report.run_link, report.run_counter)
        report.run_link = report.run_link or env.run_link(report.run_counter)
        report.ended_at = self._now()
        if report.run_link:
            self._store.record_fired(report.journal_id, report.run_counter, report.run_link)
        self._store.record_status(
            report.journal_id,
            status,
            ended_at=report.ended_at,
            failed_nodes=nodes or None,
            message=report.message,
        )
        self._set(report, RunState(status))

    def _on_status(self, env: _Environment, counter: int, status: str) -> None:
        report = env.by_counter.get(counter)
        if report is None or report.journal_id is None or status not in ("waitingToRun", "running"):
            return
        if report.state != status:
            self._store.record_status(report.journal_id, status)
            self._set(report, RunState(status))

    # -- bookkeeping ---------------------------------------------------------------------

    def _set(self, report: RunReport, state: RunState) -> None:
        report.state = state
        self._sink(ApplyEvent("run", report.environment, report))

    def _note(self, environment: str, message: str) -> None:
        self._sink(ApplyEvent("note", environment, message=message))

    def _unfired(
        self, run: RunJob, state: RunState, message: str, cause: NotFired | None = None
    ) -> None:
        report = self.reports[run.identity]
        if report.ended or report.run_counter is not None:
            return
        report.not_fired = cause
        if report.journal_id is None:
            report.journal_id = self._store.record_unfired(
                self._apply_id,
                run.environment,
                run.batch,
                run.name,
                dict(run.redacted),
                run.request_hash,
                status=state.value,
                message=message,
            )
        report.message = message
        self._set(report, state)

    def _uncertain(self, run: RunJob, what: str) -> None:
        """The run may or may not exist in Coalesce; its journal stays uncertain, so it
        is never fired again unless a person asks (``--resume --refire-uncertain``)."""
        report = self.reports[run.identity]
        report.message = f"uncertain: {what}. {run.firing.uncertain_hint()}"
        self._note(report.environment, f"{quoted(report.name)}: {report.message}")
        self._set(report, RunState.UNCERTAIN)

    def _run_error(self, run: RunJob, error: RunnerError) -> None:
        self._errors.append(f"{quoted(run.identity)}: {error}")
        self._note(run.environment, f"{quoted(run.name)}: error: {error}")
        report = self.reports[run.identity]
        if not report.ended and report.run_counter is None:
            report.message = f"not fired: {error.message}"
            report.not_fired = not_fired_by(error)
            self._set(report, RunState.NOT_STARTED)

    def _refuse(self, job: EnvironmentJob, reason: str, *, journal: bool, cause: NotFired) -> None:
        self._say_refused(job, reason)
        message = f"not fired: {reason.splitlines()[0]}"  # the hint is in the error, once
        for run in job.runs():
            report = self.reports[run.identity]
            if journal:
                self._unfired(run, RunState.NOT_STARTED, message, cause)
            else:
                report.message = message
                report.not_fired = cause
                self._set(report, RunState.NOT_STARTED)

    def _say_refused(self, job: EnvironmentJob, reason: str) -> None:
        self._errors.append(f"{quoted(job.name)}: {reason}")
        self._note(job.name, f"refused: {reason}")

    def _close_unfired(
        self, job: EnvironmentJob, state: RunState, message: str, cause: NotFired
    ) -> None:
        for run in job.runs():
            report = self.reports[run.identity]
            if report.run_counter is None and not report.ended:
                with contextlib.suppress(RunnerError, ValueError):
                    self._unfired(run, state, message, cause)


async def wait_for_lock(
    store: StateStore,
    environment: str,
    options: ApplyOptions,
    *,
    holder: str,
    sleep: Sleep,
    on_wait: Callable[[LockInfo], None] | None = None,
) -> LockToken:
    """``environment``'s lock for ``holder``, waited for as long as ``options`` say."""
    return await wait_for_lock_async(
        store,
        environment,
        holder=holder_with_ci_run(holder, os.environ),
        host=socket.gethostname(),
        pid=os.getpid(),
        ttl_seconds=options.lock_ttl,
        timeout=options.lock_timeout,
        sleep=sleep,
        poll=store.lock_poll_seconds,
        on_wait=on_wait,
    )


async def take_locks(
    store: StateStore,
    environments: Sequence[str],
    options: ApplyOptions,
    *,
    holder: str,
    sleep: Sleep,
    on_wait: Callable[[str, LockInfo], None] | None = None,
) -> dict[str, LockToken]:
    """Every environment's lock, or none (what was taken is released on the way out),
    for an operation that must fire nothing while one of them is held."""
    taken: dict[str, LockToken] = {}
    try:
        for name in environments:
            taken[name] = await wait_for_lock(
                store,
                name,
                options,
                holder=holder,
                sleep=sleep,
                on_wait=None if on_wait is None else partial(on_wait, name),
            )
    except BaseException:
        release_locks(store, taken.values())
        raise
    return taken


def uncertain_pending(store: StateStore, environment: str) -> str | None:
    """Why a new apply must not fire in ``environment``: an earlier apply left runs there
    that may or may not have been created (a resume looks for those itself)."""
    records = store.last_applied_runs([environment]).values()
    pending = sorted(r.name for r in records if r.status in UNCERTAIN_STATUSES)
    if not pending:
        return None
    return (
        f"an earlier apply left {quoted_list(pending)} uncertain in {quoted(environment)} "
        "(Coalesce may have created them). Nothing was fired, so nothing is fired twice: run "
        "`runner status --refresh` or `runner apply --resume` to look for them again "
        "(`runner apply --resume --refire-uncertain` fires the ones still not found)"
    )


_LOOK_AGAIN = (
    "`runner status --refresh` or `runner apply --resume` look for it again; "
    "`runner apply --resume --refire-uncertain` fires it anew if it is still not found"
)


def release_locks(store: StateStore, tokens: Iterable[LockToken]) -> None:
    for token in tokens:
        with contextlib.suppress(RunnerError):
            store.release_lock(token)


async def newest_run_id(client: CoalesceClient, environment_id: str) -> int:
    """The id of the environment's newest run: every run fired after now is newer."""
    newest = await client.list_runs(
        environment_id=environment_id, limit=1, order_by="id", order_by_direction="desc"
    )
    return max((run.id for run in newest.data), default=0)


async def newest_run_ids(pool: ClientPool, jobs: Sequence[EnvironmentJob]) -> dict[str, int]:
    """:func:`newest_run_id` of each environment that answers; an environment that does
    not is left out (its own preflight reports the problem)."""

    async def one(job: EnvironmentJob) -> tuple[str, int | None]:
        client = pool.client(job.url, job.token, token_source=job.token_source)
        try:
            return job.name, await newest_run_id(client, job.environment_id)
        except RunnerError:
            return job.name, None

    found = await asyncio.gather(*(one(job) for job in jobs))
    return {name: floor for name, floor in found if floor is not None}


def not_fired_by(error: RunnerError) -> NotFired:
    """What must change before a run that ``error`` kept from being fired can be."""
    if isinstance(error, LockHeldError):
        return NotFired.LOCK
    if isinstance(error, CoalesceUnreachable):
        return NotFired.UNREACHABLE
    if isinstance(error, CoalesceAPIError) and error.status is not None:
        if error.status in (401, 403):
            return NotFired.TOKEN
        if error.status == 429 or error.status >= 500:
            return NotFired.UNREACHABLE
        if 400 <= error.status < 500:
            return NotFired.SPEC
    return NotFired.ERROR


def _node_from_record(node: Mapping[str, Any]) -> FailedNode:
    skipped = node.get("status") == "skipped"
    return FailedNode(node.get("nodeID"), node.get("name"), str(node.get("error", "")), skipped)


def _job_moved(request: StartRunRequest, jobs: EnvironmentJobs) -> str | None:
    """How the job ``request`` names by name moved from the ID the plan gave it."""
    name = request.job_name or ""
    now = jobs.resolve(name)
    if now.job is None:
        return (
            f"job {quoted(name)}, planned as job {request.job_id}, no longer names one job: "
            f"{now.problem}"
        )
    if now.job.id != request.job_id:
        return (
            f"job {quoted(name)} is now job {id_text(now.job.id)}, not job {request.job_id} "
            "as planned"
        )
    return None
