"""``runner rerun``, second half: firing the reruns and following them, journaled as a
new apply.

As in apply, a rerun's intent is committed before ``POST /scheduler/rerun`` and its
runCounter as soon as it is known; an answer lost on the way is looked for among the
environment's runs (a rerun names the run it reran in ``reRunID``) before anything is
sent again. Environments proceed concurrently, batches in their spec's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.apply.model import (
    UNSUCCESSFUL,
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    EventSink,
    RunReport,
    RunState,
)
from runner.apply.operations._shared import (
    SERVER_ACTIVE,
    Clock,
    Sleep,
    client_for,
    ended_details,
    run_async,
    utc_now,
)
from runner.apply.operations.rerun_plan import RerunJob, RerunPlan
from runner.apply.poller import StatusPoller
from runner.apply.service import Runtime, outcome_of
from runner.coalesce import (
    Ambiguous,
    ClientPool,
    CoalesceAPIError,
    CoalesceClient,
)
from runner.errors import RunnerError
from runner.plan import request_hash
from runner.spec import EnvironmentSpec
from runner.state import (
    LockLostError,
    LockToken,
    Outcome,
    RunStatus,
    StateStore,
    wait_for_lock_async,
)

MAX_RERUN_TRIES = 3


@dataclass(frozen=True)
class RerunResult:
    """How the reruns went, as an apply (they are journaled as one), plus which run
    each rerun reran."""

    result: ApplyResult
    rerun_of: Mapping[str, int]  # identity -> the runCounter that was rerun

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def rerun(
    plan: RerunPlan,
    *,
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink = lambda event: None,
    runtime: Runtime | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Clock = utc_now,
) -> RerunResult:
    """Fire the reruns, journaled as a new apply, and wait for them as apply does.

    Environments proceed concurrently; within one, reruns follow the batch order of
    the spec, and a batch with ``onFailure: stop`` whose rerun fails again skips the
    reruns of later batches. With ``no_wait``, the last batch is fired, not waited for.
    """
    runtime = runtime or Runtime()
    locks = _take_locks(store, list(plan.environments), options, sleep)
    for token in locks:
        if token.took_over is not None:
            note = f"took over a stale lock: {token.took_over.stale_reason}"
            sink(ApplyEvent("note", token.environment, message=note))
    try:
        apply_id = store.begin_apply(
            who=_who(),
            host=socket.gethostname(),
            git_commit=options.git_commit or _git_commit(),
            environments=list(plan.environments),
            argv=list(options.argv),
        )
        reruns = _Reruns(plan, store, apply_id, options, sink, sleep, now)

        async def work(pool: ClientPool) -> ApplyResult:
            return await reruns.run(pool, locks)

        try:
            result: ApplyResult = run_async(runtime, work)
        except BaseException as error:
            interrupted = isinstance(error, KeyboardInterrupt | asyncio.CancelledError)
            store.finish_apply(apply_id, Outcome.INTERRUPTED if interrupted else Outcome.ERRORED)
            raise
        store.finish_apply(apply_id, outcome_of(result))
    finally:
        for token in locks:
            with contextlib.suppress(RunnerError):
                store.release_lock(token)
    return RerunResult(result, {job.identity: job.original_counter for job in plan.jobs})


def _take_locks(
    store: StateStore, environments: Sequence[str], options: ApplyOptions, sleep: Sleep
) -> list[LockToken]:
    """Every environment's lock, or none: a rerun fires nothing while an apply holds
    one of them."""

    async def take() -> list[LockToken]:
        taken: list[LockToken] = []
        try:
            for environment in environments:
                taken.append(
                    await wait_for_lock_async(
                        store,
                        environment,
                        holder=options.holder or f"{_who()} (runner rerun)",
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        ttl_seconds=options.lock_ttl,
                        timeout=options.lock_timeout,
                        sleep=sleep,
                    )
                )
        except BaseException:
            for token in taken:
                with contextlib.suppress(RunnerError):
                    store.release_lock(token)
            raise
        return taken

    return asyncio.run(take())


@dataclass
class _EnvironmentRun:
    spec: EnvironmentSpec
    client: CoalesceClient
    poller: StatusPoller
    floor: int = 0  # reruns this command creates have larger ids
    claimed: set[int] = field(default_factory=set)


class _Reruns:
    """Fires and follows the reruns of one ``runner rerun``."""

    def __init__(
        self,
        plan: RerunPlan,
        store: StateStore,
        apply_id: int,
        options: ApplyOptions,
        sink: EventSink,
        sleep: Sleep,
        now: Clock,
    ) -> None:
        self._plan = plan
        self._store = store
        self._apply_id = apply_id
        self._options = options
        self._sink = sink
        self._sleep = sleep
        self._now = now
        self._errors: list[str] = []
        self._stop = asyncio.Event()
        self._by_counter: dict[int, RunReport] = {}  # runCounters are unique per URL
        self.reports = {
            job.identity: RunReport(job.spec.environment, job.spec.batch, job.spec.name)
            for job in plan.jobs
        }

    async def run(self, pool: ClientPool, locks: Sequence[LockToken]) -> ApplyResult:
        started = self._now()
        beats = [asyncio.create_task(self._heartbeat(token)) for token in locks]
        try:
            await asyncio.gather(
                *(self._environment(pool, spec) for spec in self._plan.environments.values())
            )
        finally:
            for beat in beats:
                beat.cancel()
            await asyncio.gather(*beats, return_exceptions=True)
        return ApplyResult(
            apply_id=self._apply_id,
            runs=tuple(self.reports.values()),
            errors=tuple(self._errors),
            started_at=started,
            finished_at=self._now(),
        )

    async def _heartbeat(self, token: LockToken) -> None:
        while True:
            await self._sleep(max(self._options.lock_ttl / 3, 0.05))
            try:
                self._store.heartbeat(token)
            except LockLostError as error:
                self._errors.append(f"{token.environment}: {error}")
                self._note(token.environment, f"error: {error}; stopping")
                self._stop.set()
                return

    async def _environment(self, pool: ClientPool, spec: EnvironmentSpec) -> None:
        groups = self._plan.for_environment(spec.name)
        env: _EnvironmentRun | None = None
        try:
            client = client_for(pool, spec)
            env = _EnvironmentRun(
                spec,
                client,
                StatusPoller(
                    client,
                    spec.environment_id,
                    interval=self._options.poll_interval,
                    on_status=lambda counter, status: self._on_status(counter, status),
                    sleep=self._sleep,
                ),
            )
            env.claimed = self._store.run_counters(spec.name)
            newest = await client.list_runs(
                environment_id=spec.environment_id,
                limit=1,
                order_by="id",
                order_by_direction="desc",
            )
            env.floor = max((run.id for run in newest.data), default=0)
            await self._batches(env, groups)
        except RunnerError as error:
            self._errors.append(f"{spec.name}: {error}")
            self._note(spec.name, f"error: {error}")
            for group in groups:
                for job in group:
                    self._unfired(job, RunState.NOT_STARTED, f"not rerun: {error.message}")
        finally:
            if env is not None:
                await env.poller.close()

    async def _batches(self, env: _EnvironmentRun, groups: list[list[RerunJob]]) -> None:
        stop_reason: str | None = None
        for index, group in enumerate(groups):
            if stop_reason is None and self._stop.is_set():
                stop_reason = "not rerun: the rerun was stopped"
            if stop_reason is not None:
                state = RunState.NOT_STARTED if self._stop.is_set() else RunState.SKIPPED
                for job in group:
                    self._unfired(job, state, stop_reason)
                continue
            wait = not (self._options.no_wait and index == len(groups) - 1)
            fired = await asyncio.gather(*(self._fire(env, job) for job in group))
            if wait:
                await asyncio.gather(
                    *(self._wait(env, job) for job, ok in zip(group, fired, strict=True) if ok)
                )
            failed = [j for j in group if self.reports[j.identity].state in UNSUCCESSFUL]
            if failed and failed[0].on_failure == "stop":
                stop_reason = (
                    f"skipped: the rerun of {failed[0].spec.name} in batch "
                    f"{failed[0].spec.batch} did not complete (onFailure: stop)"
                )

    # -- one rerun ---------------------------------------------------------------------

    async def _fire(self, env: _EnvironmentRun, job: RerunJob) -> bool:
        report = self.reports[job.identity]
        if self._stop.is_set():
            self._unfired(job, RunState.NOT_STARTED, "not rerun: the rerun was stopped")
            return False
        report.journal_id = self._store.record_intent(
            self._apply_id,
            job.spec.environment,
            job.spec.batch,
            job.spec.name,
            job.journal_request,
            request_hash(job.journal_request),
        )
        self._set(report, RunState.FIRING)
        counter = await self._send(env, job, report)
        if counter is None:
            return False
        self._store.record_fired(report.journal_id, counter)
        self._store.record_status(
            report.journal_id,
            RunStatus.WAITING_TO_RUN,
            message=f"rerun of run {job.original_counter}",
        )
        env.claimed.add(counter)
        self._by_counter[counter] = report
        report.run_counter = counter
        report.fired_at = self._now()
        self._set(report, RunState.WAITING_TO_RUN)
        return True

    async def _send(self, env: _EnvironmentRun, job: RerunJob, report: RunReport) -> int | None:
        assert report.journal_id is not None
        for _attempt in range(MAX_RERUN_TRIES):
            try:
                outcome = await env.client.rerun(dict(job.body))
            except CoalesceAPIError as error:
                self._store.record_status(
                    report.journal_id, RunStatus.NOT_STARTED, message=error.message
                )
                report.message = str(error)
                self._set(report, RunState.NOT_STARTED)
                return None
            if not isinstance(outcome, Ambiguous):
                return outcome.run_counter
            self._store.record_ambiguous(
                report.journal_id, f"rerun of run {job.original_counter}: {outcome.reason}"
            )
            self._note(
                env.spec.name,
                f"{job.spec.name}: {outcome.reason}; looking for the rerun in Coalesce",
            )
            try:
                found = await self._find(env, job)
            except RunnerError as error:
                self._uncertain(
                    report,
                    job,
                    f"the rerun's answer was lost ({outcome.reason}) and looking for it in "
                    f"Coalesce failed ({error.message})",
                )
                return None
            if found is not None:
                self._note(env.spec.name, f"{job.spec.name}: found it as run {found}")
                return found
        self._uncertain(
            report, job, f"the rerun's outcome stayed unknown after {MAX_RERUN_TRIES} tries"
        )
        return None

    def _uncertain(self, report: RunReport, job: RerunJob, what: str) -> None:
        """The rerun may or may not exist in Coalesce: the journal keeps it uncertain
        (``runner status`` lists it), and the person is told where to look."""
        report.message = (
            f"{what}: it may have been created. Look for a rerun of run "
            f"{job.original_counter} among the environment's runs in Coalesce before "
            "rerunning it again"
        )
        self._note(report.environment, f"{report.name}: {report.message}")
        self._set(report, RunState.NOT_STARTED)

    async def _find(self, env: _EnvironmentRun, job: RerunJob) -> int | None:
        """The rerun Coalesce created for ``job``: the oldest run newer than every run
        known before, claimed by nothing, that reruns the same run."""
        found: int | None = None
        async for summary in env.client.iter_runs(
            environment_id=env.spec.environment_id,
            order_by="id",
            order_by_direction="desc",
            page_size=100,
        ):
            if summary.id <= env.floor:
                break
            rerun_of = str(summary.reRunID) if summary.reRunID is not None else None
            if summary.id not in env.claimed and rerun_of == str(job.original_counter):
                found = summary.id  # newest first: the last one seen is the oldest
        if found is not None:
            env.claimed.add(found)
        return found

    async def _wait(self, env: _EnvironmentRun, job: RerunJob) -> None:
        report = self.reports[job.identity]
        counter = report.run_counter
        assert counter is not None and report.journal_id is not None
        future = env.poller.wait(counter)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        timeout = job.spec.timeout or self._options.default_timeout
        try:
            waiting: set[asyncio.Future[Any]] = {future, stop}
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if future in done and not future.cancelled():
            error = future.exception()
            if error is not None:
                # Given up waiting, as on a timeout: the rerun may still be going, and a
                # later batch must not be fired as if it had completed.
                why = error.message if isinstance(error, RunnerError) else str(error)
                self._store.record_status(
                    report.journal_id, RunStatus.TIMEOUT, message=f"lost track: {why}"
                )
                report.message = (
                    f"lost track of the rerun ({why}); stopped waiting for it: see "
                    f"`runner status`, or cancel it with: runner cancel {job.identity}"
                )
                self._note(env.spec.name, f"{job.spec.name}: {report.message}")
                self._set(report, RunState.TIMEOUT)
                return
            await self._ended(env, report, future.result())
            return
        env.poller.forget(counter)
        if not self._stop.is_set():
            self._store.record_status(
                report.journal_id, RunStatus.TIMEOUT, message="rerun stopped waiting"
            )
            report.message = (
                f"still running after {timeout:g}s; stopped waiting "
                f"(cancel it with: runner cancel {job.identity})"
            )
            self._set(report, RunState.TIMEOUT)

    async def _ended(self, env: _EnvironmentRun, report: RunReport, status: str) -> None:
        assert report.run_counter is not None and report.journal_id is not None
        nodes, link = await ended_details(env.client, report.run_counter, status)
        report.failed_nodes = nodes
        report.run_link = link or report.run_link
        report.ended_at = self._now()
        if link:
            self._store.record_fired(report.journal_id, report.run_counter, link)
        self._store.record_status(
            report.journal_id,
            status,
            ended_at=report.ended_at,
            failed_nodes=[n.as_dict() for n in nodes] or None,
        )
        self._set(report, RunState(status))

    def _on_status(self, counter: int, status: str) -> None:
        report = self._by_counter.get(counter)
        if report is None or report.journal_id is None or status not in SERVER_ACTIVE:
            return
        if report.state != status:
            self._store.record_status(report.journal_id, status)
            self._set(report, RunState(status))

    # -- bookkeeping -------------------------------------------------------------------

    def _set(self, report: RunReport, state: RunState) -> None:
        report.state = state
        self._sink(ApplyEvent("run", report.environment, report))

    def _note(self, environment: str, message: str) -> None:
        self._sink(ApplyEvent("note", environment, message=message))

    def _unfired(self, job: RerunJob, state: RunState, message: str) -> None:
        report = self.reports[job.identity]
        if report.ended or report.run_counter is not None:
            return
        if report.journal_id is None:
            report.journal_id = self._store.record_unfired(
                self._apply_id,
                job.spec.environment,
                job.spec.batch,
                job.spec.name,
                job.journal_request,
                request_hash(job.journal_request),
                status=state.value,
                message=message,
            )
        report.message = message
        self._set(report, state)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
