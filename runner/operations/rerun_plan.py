"""``runner rerun``, first half: which runs to rerun, and their ``POST /scheduler/rerun``
bodies, built from the current specs (Coalesce does not carry a run's parameters over
to its rerun, so they are sent again, with the credentials and the force flag)."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.coalesce.requests import FORCE_KEYS, RerunRequest
from runner.errors import RunnerError, quoted, quoted_list
from runner.operations._shared import (
    check_patterns,
    environment_spec,
    fired_environment_id,
    latest_by_identity,
)
from runner.spec import EnvironmentSpec, MissingSecret, RunSpec, SpecSet
from runner.state import (
    ApplyRecord,
    RunRecord,
    RunStatus,
    StateReader,
)

RERUNNABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELED})


@dataclass(frozen=True)
class RerunJob:
    """One run to rerun: the run that failed, and the rerun body built from the specs."""

    original: RunRecord
    spec: RunSpec
    batch_index: int  # the batch's place in its spec: reruns follow batch order
    on_failure: str
    request: RerunRequest  # with Secret objects: only the client reveals them
    journal_request: dict[str, Any]  # what the journal keeps as the run's request

    @property
    def identity(self) -> str:
        return self.spec.identity

    @property
    def original_counter(self) -> int:
        assert self.original.run_counter is not None
        return self.original.run_counter


@dataclass(frozen=True)
class RerunPlan:
    """The reruns to fire, grouped by environment, what the selection left out, and
    how the specs were rendered (a resumed rerun renders them the same way)."""

    jobs: tuple[RerunJob, ...]
    environments: Mapping[str, EnvironmentSpec]
    source_apply: int | None = None  # --failed: the apply whose failures are rerun
    never_fired: tuple[RunRecord, ...] = ()  # --failed: skipped / not started runs
    variables: Mapping[str, str] = field(default_factory=dict)
    rendered_at: dt.datetime | None = None

    def for_environment(self, environment: str) -> list[list[RerunJob]]:
        """The environment's reruns, one list per batch, in batch order."""
        groups: dict[int, list[RerunJob]] = {}
        for job in self.jobs:
            if job.spec.environment == environment:
                groups.setdefault(job.batch_index, []).append(job)
        return [groups[index] for index in sorted(groups)]


@dataclass(frozen=True)
class RerunSelection:
    """The runs to rerun; with ``--failed``, also the apply they failed in and its runs
    that were never fired (skipped, not started), which a rerun cannot pick up."""

    runs: tuple[RunRecord, ...]
    last_apply: ApplyRecord | None = None
    never_fired: tuple[RunRecord, ...] = ()
    in_flight: tuple[RunRecord, ...] = ()  # --failed: runs of the apply not known to have ended


def select_for_rerun(
    store: StateReader, patterns: Sequence[str], *, failed: bool
) -> RerunSelection:
    """The runs to rerun: with ``failed``, the failed or canceled runs of the last apply
    (those matching ``patterns``, if any); otherwise the latest run of each identity the
    patterns name, each of which must have failed or been canceled (or the whole
    selection is refused, naming why, before anything is sent).
    """
    if not failed and not patterns:
        raise RunnerError(
            "name the runs to rerun (ENV/RUN, globs allowed), or pass --failed",
            hint="--failed reruns the failed and canceled runs of the last apply",
        )
    check_patterns(patterns)
    if failed:
        return _failed_of_last_apply(store, patterns)
    known = store.last_applied_runs()
    chosen: dict[str, RunRecord] = {}
    unmatched = []
    for pattern in patterns:
        hits = [r for identity, r in known.items() if fnmatch.fnmatchcase(identity, pattern)]
        if not hits:
            unmatched.append(pattern)
        for record in hits:
            chosen.setdefault(record.identity, record)
    if unmatched:
        raise RunnerError(
            f"no fired run in the state matches {quoted_list(unmatched)}; nothing was rerun",
            hint="runner status shows the last apply; a run never fired is fired by runner apply",
        )
    refusals = [_why_not_rerunnable(r) for r in chosen.values()]
    problems = [reason for reason in refusals if reason is not None]
    if problems:
        raise RunnerError(
            "cannot rerun:\n  " + "\n  ".join(problems) + "\nnothing was rerun",
            hint="rerun fires again only the failed nodes of a failed or canceled run",
        )
    return RerunSelection(tuple(sorted(chosen.values(), key=lambda r: r.run_id)))


def _failed_of_last_apply(store: StateReader, patterns: Sequence[str]) -> RerunSelection:
    last = store.last_apply()
    if last is None:
        return RerunSelection(())
    runs = latest_by_identity(store.runs_of_apply(last.apply_id))
    if patterns:
        runs = [r for r in runs if any(fnmatch.fnmatchcase(r.identity, p) for p in patterns)]
    chosen = [r for r in runs if r.status in RERUNNABLE]
    never_fired = [r for r in runs if r.status in (RunStatus.SKIPPED, RunStatus.NOT_STARTED)]
    in_flight = tuple(r for r in runs if r.in_flight)
    return RerunSelection(tuple(chosen), last, tuple(never_fired), in_flight)


def _why_not_rerunnable(record: RunRecord) -> str | None:
    status = record.status
    if status in RERUNNABLE:
        return None
    counter = f" (run {record.run_counter})" if record.run_counter is not None else ""
    if status is RunStatus.COMPLETED:
        return f"{quoted(record.identity)}{counter} completed: there is nothing to rerun"
    if record.in_flight:
        return (
            f"{quoted(record.identity)}{counter} is {status.value} as far as the state knows: "
            "`runner status --refresh` asks Coalesce how it stands, `runner cancel` stops it"
        )
    return (
        f"{quoted(record.identity)} is {status.value}: it was sent but its answer was lost; look "
        "for it among the environment's runs in Coalesce (`runner apply --resume` does "
        "that for an apply's runs)"
    )


def plan_reruns(
    selection: RerunSelection,
    specs: SpecSet,
    *,
    variables: Mapping[str, str] | None = None,
    rendered_at: dt.datetime | None = None,
) -> RerunPlan:
    """Build each rerun's body from the current specs: ``runID`` is the failed run's
    runCounter, and the run's force flag, credentials and parameters are sent again.
    ``variables`` and ``rendered_at`` are what ``specs`` were rendered with, if known.

    Every problem (a spec gone, a missing secret, an environment that moved) is
    reported at once, before anything is fired.
    """
    jobs: list[RerunJob] = []
    environments: dict[str, EnvironmentSpec] = {}
    problems: list[str] = []
    for record in selection.runs:
        try:
            environment = environment_spec(specs, record.environment)
            jobs.append(_rerun_job(record, environment))
            environments[environment.name] = environment
        except RunnerError as error:
            problems.append(str(error).replace("\n", " "))
    for environment in environments.values():
        if environment.usable_token is None:
            problems.append(
                f"no Coalesce token for {quoted(environment.name)}: {environment.token_source}"
            )
    if problems:
        raise RunnerError(
            "cannot rerun:\n  " + "\n  ".join(dict.fromkeys(problems)) + "\nnothing was rerun"
        )
    source = selection.last_apply.apply_id if selection.last_apply is not None else None
    return RerunPlan(
        tuple(jobs),
        environments,
        source,
        selection.never_fired,
        dict(variables or {}),
        rendered_at,
    )


def _rerun_job(record: RunRecord, environment: EnvironmentSpec) -> RerunJob:
    found = [
        (index, batch, run)
        for index, batch in enumerate(environment.batches)
        for run in batch.runs
        if run.name == record.name
    ]
    if not found:
        raise RunnerError(
            f"{quoted(record.identity)} is no longer in the specs ({environment.path}); a rerun "
            "takes its parameters and credentials from the spec"
        )
    index, batch, run = found[0]
    fired_in = fired_environment_id(record, environment.environment_id)
    if fired_in != environment.environment_id:
        raise RunnerError(
            f"{quoted(record.identity)} was fired in Coalesce environment {fired_in}, but its spec "
            f"now names environment {environment.environment_id}; rerun it from Coalesce"
        )
    missing = [s.source for s in run.request.secrets() if isinstance(s, MissingSecret)]
    if missing:
        raise RunnerError(
            f"{quoted(record.identity)}: secret not available: {'; '.join(missing)}; "
            "set it before rerunning"
        )
    assert record.run_counter is not None  # failed or canceled means fired
    request = RerunRequest.of(record.run_counter, run.request)
    return RerunJob(
        original=record,
        spec=run,
        batch_index=index,
        on_failure=batch.on_failure,
        request=request,
        journal_request=journal_request(record.request, request.redacted()),
    )


def journal_request(original: Mapping[str, Any], rerun: Mapping[str, Any]) -> dict[str, Any]:
    """What the journal keeps as a rerun's request: the startRun request of the run it
    reran, with the force flag, credentials and parameters the rerun sent.

    The journal's request of a run is the plan's baseline (the last applied request of
    each ``ENV/RUN``); a rerun runs the original's nodes with the spec's current
    settings, and this is that, in startRun's shape, so the next plan compares like
    with like instead of showing a rerun body as a change. Which run was rerun is kept
    in the record's message.
    """
    request: dict[str, Any] = {
        key: value
        for key, value in original.items()
        if key not in ("userCredentials", "parameters")
    }
    details = {k: v for k, v in dict(original.get("runDetails", {})).items() if k not in FORCE_KEYS}
    sent = rerun.get("runDetails", {})
    details.update({k: sent[k] for k in FORCE_KEYS if k in sent})
    request["runDetails"] = details
    for key in ("userCredentials", "parameters"):
        if key in rerun:
            request[key] = rerun[key]
    return request
