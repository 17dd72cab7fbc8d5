"""Applying a plan: begin the apply in the state, run the executor, record how it ended.

The state keeps the plan document of every apply, so that an interrupted
apply is continued with exactly the runs it was started with. ``runner rerun`` is
executed with this module's pieces (see :mod:`runner.operations`): it is journaled as an
apply, and resumed as one.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.apply.executor import (
    Executor,
    newest_run_ids,
    pause_until,
    release_locks,
    take_locks,
    uncertain_pending,
)
from runner.apply.jobs import jobs_from_plan
from runner.apply.model import (
    EXIT_INTERRUPTED,
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    EnvironmentJob,
    EventSink,
    RunState,
)
from runner.errors import RunnerError
from runner.plan import Plan, plan_to_document
from runner.runtime import Runtime, on_own_loop
from runner.spec import RenderOptions, SpecSet, load_specs
from runner.state import ApplyRecord, LockInfo, LockToken, Outcome, RunRecord, StateStore

FIRES_KEY = "fires"  # in the stored plan document: the identities this apply fires
# ... and, per environment, the newest run id in Coalesce before this apply fired any.
FLOORS_KEY = "runFloors"
# What the document is: a plan ("runner-plan"), or the reruns of `runner rerun`.
KIND_KEY = "kind"
RERUN_KIND = "runner-rerun"

Begin = Callable[[Mapping[str, int]], int]


@dataclass(frozen=True)
class Prepared:
    """An apply ready to start: the plan as reviewed and the jobs it fires."""

    plan: Plan
    jobs: tuple[EnvironmentJob, ...]

    @property
    def run_count(self) -> int:
        return sum(len(job.runs()) for job in self.jobs)


def prepare(plan: Plan, specs: SpecSet, *, changed_only: bool = False) -> Prepared:
    return Prepared(plan, tuple(jobs_from_plan(plan, specs, changed_only=changed_only)))


def apply_prepared(
    prepared: Prepared,
    *,
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink,
    runtime: Runtime | None = None,
) -> ApplyResult:
    """Fire the prepared runs and wait for them; the state records every step."""
    begin = _begin_prepared(prepared, store, options)
    runtime = runtime or Runtime()
    return execute(prepared.jobs, begin, store=store, options=options, sink=sink, runtime=runtime)


def _begin_prepared(prepared: Prepared, store: StateStore, options: ApplyOptions) -> Begin:
    document = plan_to_document(prepared.plan)
    document[FIRES_KEY] = [run.identity for job in prepared.jobs for run in job.runs()]
    return begin_apply(
        store, options, prepared.jobs, document, plan_hash=prepared.plan.fingerprint()
    )


def begin_apply(
    store: StateStore,
    options: ApplyOptions,
    jobs: Sequence[EnvironmentJob],
    document: dict[str, Any],
    *,
    plan_hash: str | None = None,
) -> Begin:
    """How :func:`execute` records the start of an apply of ``jobs``: with who, where, on
    which commit and the command line, and ``document``, what ``--resume`` needs."""

    def begin(floors: Mapping[str, int]) -> int:
        # The floors are kept with the document, so that a resumed apply knows which
        # runs of its environments existed before it and can never be taken for its own.
        document[FLOORS_KEY] = dict(floors)
        return store.begin_apply(
            who=who(),
            host=socket.gethostname(),
            git_commit=options.git_commit or _git_commit(),
            environments=[job.name for job in jobs],
            argv=list(options.argv),
            plan_hash=plan_hash,
            plan=document,
        )

    return begin


async def aapply_plan(
    plan: Plan,
    specs: SpecSet,
    *,
    store: StateStore,
    options: ApplyOptions | None = None,
    sink: EventSink = lambda event: None,
    changed_only: bool = False,
    runtime: Runtime | None = None,
) -> ApplyResult:
    """The library entry point: fire what ``plan`` says (secrets come from ``specs``),
    inside a running event loop; :func:`apply_plan` is the same on a loop of its own.
    The loop is the caller's: no signal handlers are installed unless ``runtime`` asks
    for them, as the command line does (otherwise cancel the task to interrupt)."""
    prepared = prepare(plan, specs, changed_only=changed_only)
    runtime = runtime or Runtime(install_signal_handlers=False)
    begin = _begin_prepared(prepared, store, options or ApplyOptions())
    return await aexecute(
        prepared.jobs,
        begin,
        store=store,
        options=options or ApplyOptions(),
        sink=sink,
        runtime=runtime,
    )


#: :func:`aapply_plan` on an event loop of its own (it fails inside a running one, as
#: ``asyncio.run`` does: an async orchestrator awaits :func:`aapply_plan`).
apply_plan = on_own_loop(aapply_plan)


def continue_apply(
    record: ApplyRecord,
    document: Mapping[str, Any],
    jobs: Sequence[EnvironmentJob],
    *,
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink,
    runtime: Runtime,
    locks_first: bool = False,
) -> ApplyResult:
    """Execute ``jobs`` as the continuation of the interrupted apply ``record``, whose
    stored ``document`` they were built from: what it fired is picked up, not fired again."""
    previous = latest_records(store.runs_of_apply(record.apply_id))
    floors = {str(k): int(v) for k, v in dict(document.get(FLOORS_KEY) or {}).items()}
    store.resume_apply(record.apply_id)
    return execute(
        jobs,
        lambda _floors: record.apply_id,
        store=store,
        options=options,
        sink=sink,
        runtime=runtime,
        previous=previous,
        floors=floors,
        locks_first=locks_first,
    )


def load_specs_for_plan(plan: Plan, environ: Mapping[str, str]) -> SpecSet:
    """The specs a plan was made from, rendered as they were then, with secrets."""
    return _load_for_plan(plan, environ)


def _load_for_plan(plan: Plan, environ: Mapping[str, str]) -> SpecSet:
    files = [name for name in plan.spec_files if not Path(name).name.startswith("_")]
    options = RenderOptions(
        variables=dict(plan.variables),
        environ=environ,
        now=plan.created_at,
        require_secrets=True,
    )
    names = [environment.name for environment in plan.environments]
    return load_specs(files, options=options, environ=environ, environments=names)


def latest_records(records: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """The latest record of each run identity among ``records`` (oldest first)."""
    latest: dict[str, RunRecord] = {}
    for record in records:  # oldest first: later records win
        latest[record.identity] = record
    return latest


async def aexecute(
    jobs: Sequence[EnvironmentJob],
    begin: Begin,
    *,
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink,
    runtime: Runtime,
    previous: Mapping[str, RunRecord] | None = None,
    floors: Mapping[str, int] | None = None,
    locks_first: bool = False,
) -> ApplyResult:
    """Run the executor over ``jobs`` and record how the apply ended.

    ``begin(floors)`` records the apply and returns its id; for a new apply (``floors``
    is ``None``) the floors are read from Coalesce first. ``previous`` is the journal of
    the interrupted apply being resumed. With ``locks_first``, every environment's lock
    is taken before anything is recorded, or the whole apply is refused (the lock's
    error is raised): nothing is fired while another apply holds one of them.
    """
    apply_ids: list[int] = []
    if previous is None:
        _refuse_over_uncertain_runs(store, jobs)

    async def main() -> ApplyResult:
        stop = asyncio.Event()
        with _interrupts(stop, runtime.install_signal_handlers):
            locks = await _locks_first(jobs, store, options, sink, stop) if locks_first else {}
            try:
                # Room for every startRun allowed in flight, plus each environment's poll.
                connections = options.max_concurrent + len(jobs)
                async with runtime.pool(max_connections=connections) as pool:
                    known = floors if floors is not None else await newest_run_ids(pool, jobs)
                    apply_ids.append(begin(known))
                    # Whoever finds an environment locked is told who holds it, and which apply.
                    holder = options.holder or f"{who()} (apply {apply_ids[0]})"
                    executor = Executor(
                        jobs,
                        store=store,
                        pool=pool,
                        apply_id=apply_ids[0],
                        options=replace(options, holder=holder),
                        sink=sink,
                        previous=previous,
                        floors=known,
                        locks=locks,
                        stop=stop,
                    )
                    return await executor.run()
            finally:
                release_locks(store, locks.values())  # the executor releases those it used

    try:
        result = await main()
    except BaseException as error:
        if apply_ids:
            interrupted = isinstance(error, KeyboardInterrupt | asyncio.CancelledError)
            store.finish_apply(
                apply_ids[0], Outcome.INTERRUPTED if interrupted else Outcome.ERRORED
            )
        raise
    store.finish_apply(result.apply_id, outcome_of(result))
    return result


#: :func:`aexecute` on an event loop of its own.
execute = on_own_loop(aexecute)


async def _locks_first(
    jobs: Sequence[EnvironmentJob],
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink,
    stop: asyncio.Event,
) -> dict[str, LockToken]:
    def waiting(environment: str, lock: LockInfo) -> None:
        note = f"waiting for the lock held by {lock.describe()}"
        sink(ApplyEvent("note", environment, message=note))

    return await take_locks(
        store,
        [job.name for job in jobs],
        options,
        holder=options.holder or who(),
        sleep=pause_until(stop),
        on_wait=waiting,
    )


def _refuse_over_uncertain_runs(store: StateStore, jobs: Sequence[EnvironmentJob]) -> None:
    """A new apply is refused, before anything is recorded, in environments where an
    earlier one left runs that Coalesce may have created: firing them again could make a
    second run, and only a resume may look for them (or, when asked, fire them anew)."""
    reasons = [r for r in (uncertain_pending(store, job.name) for job in jobs) if r]
    if reasons:
        raise RunnerError(
            "nothing was fired: " + "; ".join(reasons),
            hint="runner status --refresh, then runner apply --resume",
        )


def outcome_of(result: ApplyResult) -> Outcome:
    # An apply that could not tell whether a run was fired is unfinished: recorded as
    # interrupted, `apply --resume` continues it and looks for that run first.
    if result.interrupted or any(r.uncertain for r in result.runs):
        return Outcome.INTERRUPTED
    if result.errors:
        return Outcome.ERRORED
    states = {r.state for r in result.runs}
    if RunState.TIMEOUT in states:
        return Outcome.TIMEOUT
    if states - {RunState.COMPLETED, RunState.WAITING_TO_RUN, RunState.RUNNING}:
        return Outcome.FAILED
    return Outcome.SUCCEEDED


class _interrupts:
    """First Ctrl-C or SIGTERM: set ``stop``, so that nothing more is fired or waited
    for, cleanly. Second: exit at once (every journal write is its own committed
    transaction, so the state stays whole)."""

    def __init__(self, stop: asyncio.Event, install: bool) -> None:
        self._stop = stop
        self._install = install
        self._signals = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        if not self._install:
            return
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self._stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        self._stop.set()

    def __exit__(self, *exc: object) -> None:
        if not self._install:
            return
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)


def who() -> str:
    """The person applying, as the journal and the locks name them."""
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
    return done.stdout.strip() or None if done.returncode == 0 else None
