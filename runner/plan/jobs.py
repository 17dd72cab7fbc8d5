"""The job of each planned run, as the plan shows and freezes it.

A run names its job by ID (``jobID: "7"``) or by name (``job: "Nightly marts"``). An
online plan reads the environment's jobs: a name is resolved to its ID, which the plan
then holds (a saved plan fires that ID, and apply refuses it if the name has come to mean
another job); an ID is checked and shown with the job's name and selectors, so that a
reviewer sees what ``jobID: "7"`` means. Offline, a name stays unresolved, shown as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.coalesce import EnvironmentJobs
from runner.coalesce.jobs import is_job_id
from runner.coalesce.models import DeployedJob
from runner.errors import quoted
from runner.plan.baseline import BaselineRun
from runner.plan.model import PlannedJob, PlanWarning
from runner.plan.online import EnvironmentFacts
from runner.secrets import bounded, foreign_name
from runner.spec import RunSpec

#: How much of a job's name and selector the plan shows (they are Coalesce's text).
NAME_SHOWN = 200
SELECTOR_SHOWN = 500


@dataclass(frozen=True)
class JobOfRun:
    """A run with its job resolved (when it could be), and what the plan says of it."""

    run: RunSpec
    job: PlannedJob | None
    warnings: tuple[PlanWarning, ...] = ()
    # The job's selectors as Coalesce lists them (not for display: see ``job``).
    include: str | None = None
    exclude: str | None = None


def job_of_run(run: RunSpec, facts: EnvironmentFacts | None) -> JobOfRun:
    jobs = facts.jobs if facts is not None else None
    if run.request.job_name is not None:
        return _by_name(run, run.request.job_name, jobs)
    if run.request.job_id is not None:
        return _by_id(run, run.request.job_id, jobs)
    return JobOfRun(run, None)


def _by_name(run: RunSpec, name: str, jobs: EnvironmentJobs | None) -> JobOfRun:
    if jobs is None:
        return JobOfRun(
            run,
            PlannedJob(None, name, by_name=True),
            (
                _warning(
                    run,
                    "job-unresolved",
                    f"job {quoted(name)} is not resolved to its ID: this plan did not read "
                    "Coalesce. Apply resolves names only through an online plan",
                ),
            ),
        )
    resolution = jobs.resolve(name)
    found = resolution.job
    if found is None or not is_job_id(found.id):
        problem = resolution.problem or (
            f"Coalesce gives job {quoted(name)} an ID that is not a number"
        )
        return JobOfRun(
            run,
            PlannedJob(None, name, by_name=True),
            (_warning(run, "unknown-job", f"{problem}: the run cannot be fired", fails=True),),
        )
    resolved = dataclasses.replace(run, request=run.request.resolved(found.id))
    return _of(resolved, found, name=name, by_name=True)


def _by_id(run: RunSpec, job_id: str, jobs: EnvironmentJobs | None) -> JobOfRun:
    if jobs is None:
        return JobOfRun(run, PlannedJob(job_id, None, by_name=False))
    found = jobs.by_id(job_id)
    if found is not None:
        return _of(run, found, name=_foreign(found.name, NAME_SHOWN), by_name=False)
    where = f"environment {quoted(run.environment)} (Coalesce environment {jobs.environment_id}"
    known = (
        f", whose jobs are: {jobs.listing()})"
        if jobs.listed
        else ", which does not list its jobs and answered 404 for this one)"
    )
    return JobOfRun(
        run,
        PlannedJob(job_id, None, by_name=False),
        (
            _warning(
                run,
                "unknown-job",
                f"jobID {quoted(job_id)} is not a job of {where}{known}: Coalesce would refuse "
                "the run. Set jobID to one of those, or deploy the job first",
                fails=True,
            ),
        ),
    )


def _of(run: RunSpec, job: DeployedJob, *, name: str | None, by_name: bool) -> JobOfRun:
    shown = PlannedJob(
        job.id,
        name,
        by_name=by_name,
        include_selector=_foreign(job.includeSelector, SELECTOR_SHOWN),
        exclude_selector=_foreign(job.excludeSelector, SELECTOR_SHOWN),
    )
    return JobOfRun(
        run, shown, include=job.includeSelector or None, exclude=job.excludeSelector or None
    )


def _foreign(text: str | None, limit: int) -> str | None:
    """Coalesce's text as the plan shows it: withheld if it holds a secret, on one line,
    with what a terminal would act on made visible."""
    kept = foreign_name(text, limit=limit)
    return None if kept is None else bounded(kept, limit)


def _warning(run: RunSpec, code: str, message: str, *, fails: bool = False) -> PlanWarning:
    return PlanWarning(code, message, run.environment, run.name, fails)


def comparable(
    base: BaselineRun, now: JobOfRun, facts: EnvironmentFacts | None
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The baseline's request and the run's, made comparable where one names its job:

    - a git baseline's name was never resolved: it is, with the jobs as they are now;
    - where the baseline names its job, or this run's name is not resolved, the names
      are compared as the field ``job`` (the state keeps IDs only: against it, a
      resolved name is compared by ID);
    - a run whose name this plan could not resolve has no ID to compare. Its baseline's
      ID is left out only when the baseline named the same job; otherwise (a baseline
      that gave an ID, as the state's do, or none) the job is shown as changed, since
      whether it is the same job cannot be told offline."""
    before, after = _copy(base.request), _copy(now.run.request.redacted())
    jobs = facts.jobs if facts is not None else None
    if base.job_name is not None and "jobID" not in before["runDetails"] and jobs is not None:
        found = jobs.resolve(base.job_name).job
        if found is not None:
            before["runDetails"]["jobID"] = found.id
    name = now.run.request.job_name
    if base.job_name is not None or now.run.request.unresolved:
        before["job"], after["job"] = base.job_name, name
    if now.run.request.unresolved and base.job_name == name:
        before["runDetails"].pop("jobID", None)
    return before, after


def _copy(request: Mapping[str, Any]) -> dict[str, Any]:
    copied = {k: dict(v) if isinstance(v, Mapping) else v for k, v in request.items()}
    copied.setdefault("runDetails", {})
    return copied
