"""``runner rerun``, second half: the reruns, fired and followed by apply's executor.

A rerun is a :class:`~runner.apply.model.RunJob` whose request is a
:class:`~runner.coalesce.requests.RerunRequest`: it sends ``POST /scheduler/rerun``, is
looked for by its ``reRunID`` when the answer is lost (see
:class:`~runner.apply.firing.Rerun`), and is journaled with the startRun request
of the run it reran (see ``journal_request``) and the note ``rerun of run N``. All
else is apply's: limits, waiting, timeouts, interrupts. The reruns of one ``runner
rerun`` are journaled as one apply, which keeps what ``runner apply --resume`` needs to
continue it; every environment's lock is taken first, so that nothing is rerun while
an apply holds one of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from runner.apply.jobs import environment_job
from runner.apply.model import (
    ApplyOptions,
    ApplyResult,
    BatchJob,
    EnvironmentJob,
    EventSink,
    RunJob,
)
from runner.apply.service import (
    KIND_KEY,
    RERUN_KIND,
    begin_apply,
    continue_apply,
    execute,
    who,
)
from runner.errors import RunnerError, StalePlanError, quoted, quoted_list
from runner.operations._shared import load_specs_for_operations
from runner.operations.rerun_plan import RerunJob, RerunPlan, RerunSelection, plan_reruns
from runner.plan import request_hash
from runner.runtime import Runtime
from runner.state import ApplyRecord, RunRecord, StateStore


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
) -> RerunResult:
    """Fire the reruns, journaled as a new apply, and wait for them as apply does.

    Environments proceed concurrently; within one, reruns follow the batch order of
    the spec and its limits, and a batch with ``onFailure: stop`` whose rerun fails
    again skips the reruns of later batches. With ``no_wait``, the last batch is fired,
    not waited for.
    """
    jobs = environment_jobs(plan)
    begin = begin_apply(store, options, jobs, _document(plan))
    result = execute(
        jobs,
        begin,
        store=store,
        options=_holding(options),
        sink=sink,
        runtime=runtime or Runtime(),
        locks_first=True,
    )
    return RerunResult(result, {job.identity: job.original_counter for job in plan.jobs})


def resume_rerun(
    record: ApplyRecord,
    document: Mapping[str, Any],
    *,
    store: StateStore,
    options: ApplyOptions,
    sink: EventSink,
    runtime: Runtime,
) -> ApplyResult:
    """Continue the interrupted rerun ``record``: the reruns it fired are followed, the
    ones it may have fired are looked for, and the others are fired."""
    plan = _plan_again(document, store, runtime.environ)
    return continue_apply(
        record,
        document,
        environment_jobs(plan),
        store=store,
        options=_holding(options),
        sink=sink,
        runtime=runtime,
        locks_first=True,
    )


def environment_jobs(plan: RerunPlan) -> tuple[EnvironmentJob, ...]:
    """The executor's jobs: each environment's reruns in the batches of its spec."""
    jobs: list[EnvironmentJob] = []
    for name, spec in plan.environments.items():
        batches: list[BatchJob] = []
        for group in plan.for_environment(name):
            batch = spec.batches[group[0].batch_index]
            runs = tuple(_run_job(job) for job in group)
            batches.append(BatchJob(batch.name, batch.max_concurrent, batch.on_failure, runs))
        jobs.append(environment_job(spec, tuple(batches)))
    return tuple(jobs)


def _run_job(job: RerunJob) -> RunJob:
    return RunJob(
        environment=job.spec.environment,
        batch=job.spec.batch,
        name=job.spec.name,
        request=job.request,
        redacted=job.journal_request,
        request_hash=request_hash(job.journal_request),
        timeout=job.spec.timeout,
    )


def _holding(options: ApplyOptions) -> ApplyOptions:
    """Whoever finds an environment locked is told that a rerun holds it (the locks are
    taken before the apply that records it has an id)."""
    return replace(options, holder=options.holder or f"{who()} (runner rerun)")


# -- what the journal keeps, so that an interrupted rerun can be resumed --------------

RERUNS_KEY = "reruns"
DOCUMENT_VERSION = 1


def _document(plan: RerunPlan) -> dict[str, Any]:
    """What ``apply --resume`` needs to build the same reruns again: the runs they
    rerun (by journal id), the spec files and how they were rendered, and each
    rerun's request hash, to refuse a resume that would send something else."""
    rendered_at = plan.rendered_at.isoformat() if plan.rendered_at is not None else None
    return {
        KIND_KEY: RERUN_KIND,
        "formatVersion": DOCUMENT_VERSION,
        RERUNS_KEY: [
            {
                "identity": job.identity,
                "apply": job.original.apply_id,
                "journalID": job.original.run_id,
                "requestHash": request_hash(job.journal_request),
            }
            for job in plan.jobs
        ],
        "specFiles": sorted({spec.path for spec in plan.environments.values()}),
        "variables": dict(plan.variables),
        "renderedAt": rendered_at,
    }


def _plan_again(
    document: Mapping[str, Any], store: StateStore, environ: Mapping[str, str]
) -> RerunPlan:
    if document.get("formatVersion") != DOCUMENT_VERSION:
        raise RunnerError(
            "the interrupted rerun was recorded by another version of runner, which this "
            "one cannot resume",
            hint="see its runs with `runner status`, then run `runner rerun` again",
        )
    entries: list[Mapping[str, Any]] = list(document.get(RERUNS_KEY) or [])
    originals = [_original(store, entry) for entry in entries]
    variables = {str(k): str(v) for k, v in dict(document.get("variables") or {}).items()}
    rendered = document.get("renderedAt")
    rendered_at = dt.datetime.fromisoformat(rendered) if rendered else None
    specs = load_specs_for_operations(
        list(document.get("specFiles") or []),
        variables=variables,
        environ=environ,
        now=rendered_at,
    )
    plan = plan_reruns(
        RerunSelection(tuple(originals)), specs, variables=variables, rendered_at=rendered_at
    )
    sent = {entry["identity"]: entry["requestHash"] for entry in entries}
    changed = [
        job.identity
        for job in plan.jobs
        if request_hash(job.journal_request) != sent.get(job.identity)
    ]
    if changed:
        raise StalePlanError(
            f"{quoted_list(changed)} would now be rerun with other settings than the "
            "interrupted rerun sent (a spec, a --var or a RUNNER_VAR_* value changed?)",
            hint="see what it fired with `runner status`, then run `runner rerun` again",
        )
    return plan


def _original(store: StateStore, entry: Mapping[str, Any]) -> RunRecord:
    """The journal record of the run a rerun reran."""
    for record in store.runs_of_apply(int(entry["apply"])):
        if record.run_id == entry["journalID"]:
            return record
    raise RunnerError(
        f"the run that {quoted(entry['identity'])} reran (journal id {entry['journalID']}) is no "
        "longer in the state, so the rerun cannot be resumed",
        hint="run `runner rerun` again",
    )
