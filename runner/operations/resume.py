"""``runner apply --resume``: continue the last interrupted (or errored) apply or rerun,
firing nothing it already fired. Built on apply's executor, as the other operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from runner.apply.jobs import jobs_from_plan
from runner.apply.model import ApplyOptions, ApplyResult, EnvironmentJob, EventSink
from runner.apply.service import (
    FIRES_KEY,
    KIND_KEY,
    RERUN_KIND,
    continue_apply,
    load_specs_for_plan,
)
from runner.errors import RunnerError
from runner.operations.rerun_exec import resume_rerun
from runner.plan import plan_from_document
from runner.runtime import Runtime
from runner.state import ApplyRecord, StateStore

__all__ = ["resume"]


def resume(
    store: StateStore,
    *,
    options: ApplyOptions,
    sink: EventSink,
    runtime: Runtime | None = None,
) -> ApplyResult:
    """Continue the last interrupted apply, firing nothing it already fired."""
    runtime = runtime or Runtime()
    record = store.interrupted_apply()
    if record is None:
        raise RunnerError(
            "there is no interrupted apply to resume",
            hint="runner status shows the last apply; run `runner apply` for a new one",
        )
    document = store.apply_plan(record.apply_id)
    if document is None:
        raise _not_resumable(record)
    if document.get(KIND_KEY) == RERUN_KIND:
        return resume_rerun(
            record, document, store=store, options=options, sink=sink, runtime=runtime
        )
    jobs = _plan_jobs_to_resume(document, record.apply_id, runtime.environ)
    return continue_apply(
        record, document, jobs, store=store, options=options, sink=sink, runtime=runtime
    )


def _not_resumable(record: ApplyRecord) -> RunnerError:
    if record.argv[:1] == ("rerun",):
        # Reruns recorded before they kept what a resume needs.
        return RunnerError(
            f"apply {record.apply_id} was a rerun (runner {' '.join(record.argv)}) and "
            "kept nothing to resume it from",
            hint="see its runs with `runner status`, then run `runner rerun` again for "
            "the ones it did not fire",
        )
    return RunnerError(f"apply {record.apply_id} kept no plan, so it cannot be resumed")


def _plan_jobs_to_resume(
    document: Mapping[str, Any], apply_id: int, environ: Mapping[str, str]
) -> tuple[EnvironmentJob, ...]:
    """The jobs of the plan an apply kept, less the runs it did not fire (``--changed-only``)."""
    plan = plan_from_document(document, f"the plan of apply {apply_id}")
    specs = load_specs_for_plan(plan, environ)
    fires = set(document.get(FIRES_KEY, []))
    jobs = [
        replace(
            job,
            batches=tuple(
                b
                for b in (
                    replace(b, runs=tuple(r for r in b.runs if r.identity in fires))
                    for b in job.batches
                )
                if b.runs
            ),
        )
        for job in jobs_from_plan(plan, specs)
    ]
    return tuple(job for job in jobs if job.batches)
