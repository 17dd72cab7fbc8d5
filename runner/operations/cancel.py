"""``runner cancel``: ``POST /scheduler/cancelRun`` for runs in flight, recorded as
``canceled`` once Coalesce accepted. A run that ended before the cancel is reported with
the status it ended with, not as an error."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from runner.coalesce import (
    CancelAccepted,
    ClientPool,
    CoalesceAPIError,
    CoalesceClient,
    is_terminal,
)
from runner.errors import RunnerError, quoted_list
from runner.identity import RunKey
from runner.operations._shared import (
    Clock,
    SpecSource,
    check_patterns,
    client_for,
    ended_details,
    environment_spec,
    fired_environment_id,
    record_end,
    run_async,
    specs_of,
)
from runner.runtime import Runtime
from runner.shell import cancel_command
from runner.state import (
    UNCERTAIN_STATUSES,
    RunRecord,
    RunStatus,
    StateReader,
    StateStore,
    utc_now,
)

CANCELED_MESSAGE = "canceled by runner cancel"


class CancelVerdict(StrEnum):
    CANCELED = "canceled"  # Coalesce accepted the cancel (or the run shows canceled)
    ALREADY_ENDED = "already-ended"  # the run had ended before the cancel
    NOT_CANCELED = "not-canceled"  # the cancel failed, or its outcome is unknown


@dataclass(frozen=True)
class CancelReport:
    environment: str
    name: str
    run_counter: int | None
    verdict: CancelVerdict
    status: str | None  # the run's status as last known
    message: str | None = None

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))

    @property
    def ok(self) -> bool:
        return self.verdict is not CancelVerdict.NOT_CANCELED


@dataclass(frozen=True)
class CancelResult:
    runs: tuple[CancelReport, ...]

    @property
    def exit_code(self) -> int:
        return 0 if all(r.ok for r in self.runs) else 1


@dataclass(frozen=True)
class CancelSelection:
    """The runs to cancel (in flight), and named runs the journal says have ended."""

    in_flight: tuple[RunRecord, ...]
    not_in_flight: tuple[RunRecord, ...]


def select_for_cancel(
    store: StateReader, patterns: Sequence[str], *, all_runs: bool
) -> CancelSelection:
    """The in-flight runs ``--all`` or the ``ENV/RUN`` patterns (globs) name.

    A pattern that matches no run of the journal at all is an error, raised before
    anything is canceled: a typo must not pass for "nothing to do".
    """
    if all_runs == bool(patterns):
        raise RunnerError(
            "name the runs to cancel (ENV/RUN, globs allowed) or pass --all, not both"
            if all_runs
            else "name the runs to cancel (ENV/RUN, globs allowed), or pass --all",
            hint="runner status lists the runs in flight",
        )
    in_flight = store.runs_in_flight()
    if all_runs:
        return CancelSelection(tuple(in_flight), ())
    check_patterns(patterns)
    known = store.last_applied_runs()
    chosen_ids: set[int] = set()
    flying: list[RunRecord] = []
    ended: list[RunRecord] = []
    unmatched: list[str] = []
    flying_identities = {r.identity for r in in_flight}
    for pattern in patterns:
        hits = [r for r in in_flight if fnmatch.fnmatchcase(r.identity, pattern)]
        others = [
            r
            for identity, r in known.items()
            if fnmatch.fnmatchcase(identity, pattern) and not r.in_flight
        ]
        if not hits and not others:
            unmatched.append(pattern)
        for record in hits:
            if record.run_id not in chosen_ids:
                chosen_ids.add(record.run_id)
                flying.append(record)
        for record in others:
            if record.run_id not in chosen_ids and record.identity not in flying_identities:
                chosen_ids.add(record.run_id)
                ended.append(record)
    if unmatched:
        listing = quoted_list(r.identity for r in in_flight) or "none"
        raise RunnerError(
            f"no run in the state matches {quoted_list(unmatched)}; nothing was canceled",
            hint=f"runs in flight: {listing} (runner status shows them)",
        )
    return CancelSelection(tuple(flying), tuple(ended))


def cancel_runs(
    store: StateStore,
    specs: SpecSource,
    selection: CancelSelection,
    *,
    runtime: Runtime | None = None,
    now: Clock = utc_now,
) -> CancelResult:
    """Cancel the selected runs in flight (``POST /scheduler/cancelRun``) and record
    ``canceled`` once Coalesce accepted. A run that had already ended is reported with
    its status, and recorded as it ended.

    ``specs`` may be a function that loads them: they are read only if some run is in
    flight.
    """
    runtime = runtime or Runtime()
    reports = [ended_report(r) for r in selection.not_in_flight]
    if not selection.in_flight:
        return CancelResult(tuple(reports))
    loaded = specs_of(specs)

    async def work(pool: ClientPool) -> list[CancelReport]:
        targets: dict[str, tuple[CoalesceClient, str] | str] = {}
        for record in selection.in_flight:
            if record.environment not in targets:
                try:
                    spec = environment_spec(loaded, record.environment)
                    targets[record.environment] = (client_for(pool, spec), spec.environment_id)
                except RunnerError as error:
                    targets[record.environment] = str(error)
        cancels = (_cancel_one(store, targets[r.environment], r, now) for r in selection.in_flight)
        return list(await asyncio.gather(*cancels))

    cancelled: list[CancelReport] = run_async(runtime, work)
    return CancelResult(tuple(cancelled + reports))


def _cancel_report(
    record: RunRecord, verdict: CancelVerdict, status: str | None, message: str | None
) -> CancelReport:
    return CancelReport(
        record.environment, record.name, record.run_counter, verdict, status, message
    )


def ended_report(record: RunRecord) -> CancelReport:
    """The report of a named run that is not in flight."""
    if record.status in UNCERTAIN_STATUSES:
        return _cancel_report(
            record,
            CancelVerdict.NOT_CANCELED,
            record.status.value,
            "it was sent but its answer was lost, so there is no runCounter to cancel; "
            "look for it among the environment's runs in Coalesce "
            "(`runner apply --resume` does that for an apply's runs)",
        )
    return _cancel_report(record, CancelVerdict.ALREADY_ENDED, record.status.value, "not in flight")


async def _cancel_one(
    store: StateStore,
    target: tuple[CoalesceClient, str] | str,
    record: RunRecord,
    now: Clock,
) -> CancelReport:
    """Cancel one run; ``target`` is its environment's client and spec'd environment id,
    or why there is none."""
    assert record.run_counter is not None  # in flight means fired
    if isinstance(target, str):
        return _cancel_report(record, CancelVerdict.NOT_CANCELED, record.status.value, target)
    client, spec_environment_id = target
    environment_id = fired_environment_id(record, spec_environment_id)
    try:
        outcome = await client.cancel_run(record.run_counter, environment_id)
    except CoalesceAPIError as error:
        if error.status != 400:
            return _cancel_report(
                record, CancelVerdict.NOT_CANCELED, record.status.value, error.message
            )
        # 400 is also how Coalesce answers the cancel of a run that has ended.
        return await _settle_cancel(store, client, record, now, error.message, sent=False)
    if isinstance(outcome, CancelAccepted):
        store.record_status(
            record.run_id, RunStatus.CANCELED, ended_at=now(), message=CANCELED_MESSAGE
        )
        return _cancel_report(record, CancelVerdict.CANCELED, RunStatus.CANCELED.value, None)
    problem = f"the cancel's outcome is unknown ({outcome.reason})"
    return await _settle_cancel(store, client, record, now, problem, sent=True)


async def _settle_cancel(
    store: StateStore,
    client: CoalesceClient,
    record: RunRecord,
    now: Clock,
    problem: str,
    *,
    sent: bool,
) -> CancelReport:
    """The cancel did not clearly go through: ask Coalesce how the run stands, and
    record it if it has ended. ``sent``: the cancel may have reached Coalesce, so a
    canceled run is this cancel's doing."""
    assert record.run_counter is not None
    again = f"run `{cancel_command(record.identity)}` again"
    try:
        answer = await client.run_status(record.run_counter)
    except RunnerError as error:
        return _cancel_report(
            record,
            CancelVerdict.NOT_CANCELED,
            record.status.value,
            f"{problem}; its status could not be read either ({error.message}); {again}",
        )
    status = answer.runStatus
    if not is_terminal(status):
        return _cancel_report(
            record, CancelVerdict.NOT_CANCELED, status, f"{problem}; it is still {status}; {again}"
        )
    ours = sent and status == RunStatus.CANCELED
    nodes = await ended_details(client, record.run_counter, status)
    record_end(
        store, record, status, nodes, answer.runLink, now(), CANCELED_MESSAGE if ours else None
    )
    if ours:
        return _cancel_report(record, CancelVerdict.CANCELED, status, None)
    return _cancel_report(record, CancelVerdict.ALREADY_ENDED, status, "it had already finished")
