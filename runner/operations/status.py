"""``runner status``: the last apply, the runs in flight or uncertain, the locks; and
``--refresh``, which asks Coalesce how the runs in flight stand and records it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from runner.apply.model import (
    FailedNode,
)
from runner.apply.reconcile import find_created_rerun, find_created_run
from runner.apply.service import FLOORS_KEY
from runner.coalesce import (
    ClientPool,
    CoalesceClient,
    is_terminal,
)
from runner.errors import RunnerError, quoted
from runner.operations._shared import (
    SERVER_ACTIVE,
    Clock,
    SpecSource,
    client_for,
    ended_details,
    environment_spec,
    latest_by_identity,
    record_end,
    run_async,
    specs_of,
)
from runner.runtime import Runtime
from runner.state import (
    UNCERTAIN_STATUSES,
    ApplyRecord,
    LockInfo,
    RunRecord,
    StateLocation,
    StateReader,
    StateStore,
    utc_now,
)

UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Refreshed:
    """What ``status --refresh`` learned about one run in flight."""

    record: RunRecord
    before: str
    after: str | None  # None: Coalesce could not be asked
    failed_nodes: tuple[FailedNode, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class RefreshResult:
    runs: tuple[Refreshed, ...] = ()
    problems: tuple[str, ...] = ()  # environments that could not be asked at all


@dataclass(frozen=True)
class StatusReport:
    """The state as ``runner status`` shows it."""

    state_path: StateLocation
    last_apply: ApplyRecord | None
    run_counts: Mapping[str, int]  # status -> runs of the last apply
    in_flight: tuple[RunRecord, ...]
    uncertain: tuple[RunRecord, ...]
    locks: tuple[LockInfo, ...]
    now: dt.datetime
    refresh: RefreshResult | None = None

    @property
    def empty(self) -> bool:
        """Nothing was ever recorded (for these environments)."""
        return self.last_apply is None and not self.in_flight and not self.locks


def read_status(
    store: StateReader,
    environments: Sequence[str] = (),
    *,
    now: dt.datetime | None = None,
    refresh: RefreshResult | None = None,
) -> StatusReport:
    """The last apply, the runs in flight or uncertain, and the locks held, for
    ``environments`` (all when empty)."""
    wanted = list(dict.fromkeys(environments))
    last = _last_apply(store, wanted)
    counts: Counter[str] = Counter()
    if last is not None:
        counts.update(
            r.status.value for r in latest_by_identity(store.runs_of_apply(last.apply_id))
        )
    in_flight = (
        [r for env in wanted for r in store.runs_in_flight(env)]
        if wanted
        else store.runs_in_flight()
    )
    applied = store.last_applied_runs(wanted or None)
    uncertain = [r for r in applied.values() if r.status in UNCERTAIN_STATUSES]
    locks = [lock for lock in store.list_locks() if not wanted or lock.environment in wanted]
    return StatusReport(
        state_path=store.path,
        last_apply=last,
        run_counts=dict(sorted(counts.items())),
        in_flight=tuple(sorted(in_flight, key=lambda r: r.run_id)),
        uncertain=tuple(sorted(uncertain, key=lambda r: r.run_id)),
        locks=tuple(locks),
        now=now or utc_now(),
        refresh=refresh,
    )


def _last_apply(store: StateReader, environments: Sequence[str]) -> ApplyRecord | None:
    if not environments:
        return store.last_apply()
    found = [a for a in (store.last_apply(env) for env in environments) if a is not None]
    return max(found, key=lambda a: a.apply_id, default=None)


def refresh_in_flight(
    store: StateStore,
    specs: SpecSource,
    environments: Sequence[str] = (),
    *,
    runtime: Runtime | None = None,
    now: Clock = utc_now,
) -> RefreshResult:
    """Ask Coalesce how each run in flight stands and record it; a run that ended is
    recorded with its failed nodes. A run whose creation is uncertain is looked for once
    among the environment's newer runs: found, it is recorded with its runCounter (and
    then refreshed like the others); not found, it stays uncertain. ``specs`` may be a
    function that loads them: they are read only if some run is in flight."""
    runtime = runtime or Runtime()
    wanted = list(dict.fromkeys(environments))
    records = (
        [r for env in wanted for r in store.runs_in_flight(env)]
        if wanted
        else store.runs_in_flight()
    )
    applied = store.last_applied_runs(wanted or None)
    records += [r for r in applied.values() if r.status in UNCERTAIN_STATUSES]
    if not records:
        return RefreshResult()
    by_env: dict[str, list[RunRecord]] = {}
    for record in records:
        by_env.setdefault(record.environment, []).append(record)
    loaded = specs_of(specs)

    async def work(pool: ClientPool) -> RefreshResult:
        refreshed: list[Refreshed] = []
        problems: list[str] = []
        for environment, runs in by_env.items():
            try:
                client = client_for(pool, environment_spec(loaded, environment))
            except RunnerError as error:
                problems.append(f"{quoted(environment)}: not refreshed: {error}")
                continue
            for record in runs:
                if record.status in UNCERTAIN_STATUSES:
                    refreshed.append(await _look_for_uncertain(store, client, record, now))
                else:
                    refreshed.append(await _refresh_one(store, client, record, now))
        return RefreshResult(tuple(refreshed), tuple(problems))

    result: RefreshResult = run_async(runtime, work)
    return result


async def _look_for_uncertain(
    store: StateStore, client: CoalesceClient, record: RunRecord, now: Clock
) -> Refreshed:
    """One look for a run whose startRun (or rerun) answer was lost. Not found is no
    proof that it was not created: it then stays uncertain, and nothing is sent."""
    try:
        found = await find_uncertain(store, client, record)
    except RunnerError as error:
        return Refreshed(record, UNCERTAIN, None, problem=error.message)
    if found is None:
        return Refreshed(record, UNCERTAIN, UNCERTAIN, problem="Coalesce does not show it yet")
    store.record_fired(record.run_id, found)
    fired = store.get_run(record.run_id)
    assert fired is not None
    refreshed = await _refresh_one(store, client, fired, now)
    return replace(refreshed, before=UNCERTAIN)


async def find_uncertain(
    store: StateStore, client: CoalesceClient, record: RunRecord
) -> int | None:
    """The runCounter of the run an uncertain journal record stands for, if Coalesce
    shows it: newer than every run known when its apply began, claimed by no other
    record, and carrying the same request (a rerun: naming the run it reran)."""
    document = store.apply_plan(record.apply_id) or {}
    floors = dict(document.get(FLOORS_KEY) or {})
    floor = int(floors.get(record.environment, 0))
    claimed = store.run_counters(record.environment)
    environment_id = str(record.request.get("runDetails", {}).get("environmentID", ""))
    rerun_of = _rerun_of(record.message)
    if rerun_of is not None:
        return await find_created_rerun(
            client, environment_id, rerun_of, newer_than=floor, claimed=claimed
        )
    return await find_created_run(
        client, environment_id, record.request, newer_than=floor, claimed=claimed
    )


def _rerun_of(message: str | None) -> int | None:
    """The run a rerun's journal record reran (its note reads ``rerun of run N...``)."""
    prefix = "rerun of run "
    if not message or not message.startswith(prefix):
        return None
    digits = message[len(prefix) :].split(":", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


async def _refresh_one(
    store: StateStore, client: CoalesceClient, record: RunRecord, now: Clock
) -> Refreshed:
    assert record.run_counter is not None  # in flight means fired
    before = record.status.value
    try:
        answer = await client.run_status(record.run_counter)
    except RunnerError as error:
        return Refreshed(record, before, None, problem=error.message)
    status = answer.runStatus
    if is_terminal(status):
        nodes = await ended_details(client, record.run_counter, status)
        record_end(store, record, status, nodes, answer.runLink, now())
        return Refreshed(record, before, status, tuple(nodes))
    if answer.runLink and not record.run_link:
        # The same runCounter again: this only adds the link, for status to show.
        store.record_fired(record.run_id, record.run_counter, answer.runLink)
    if status in SERVER_ACTIVE and status != before:
        store.record_status(record.run_id, status)
    return Refreshed(record, before, status)
