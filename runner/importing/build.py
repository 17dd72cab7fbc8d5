"""From an environment's history to the runs of a spec, and where each came from.

- One run per job deployed in the environment, named after the job. A job run in the
  window keeps the request of its latest run (parallelism, parameters, force flag);
  one not run since then is written with its ``jobID`` alone.
- One run per distinct ad-hoc request (a refresh run with no job), newest first, with
  its selectors, parallelism, parameters and force flag; the same request fired many
  times is one run. An ad-hoc request that is exactly what a job run already asks for
  (the job's selectors, the same settings) is not repeated: the job run names it.
- A run whose request cannot be written as a spec run (a selector runner cannot read,
  text holding a credential, a job no longer deployed, ...) is left out, and said so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from runner.coalesce.jobs import is_job_id
from runner.coalesce.models import DeployedJob, RunInfo
from runner.errors import RunnerError
from runner.importing.credentials import (
    CredentialsBlock,
    infer_credentials,
    register_returned_secrets,
)
from runner.importing.history import History
from runner.importing.observed import ObservedRequest, Unusable, observe
from runner.importing.text import slug, unique_name
from runner.secrets import KNOWN_SECRETS, holds_secret

__all__ = ["ImportedRun", "ImportedSpec", "LeftOut", "RunSource", "build_spec"]

NAME_FALLBACK = "imported"


@dataclass(frozen=True)
class RunSource:
    """Where an imported run came from."""

    kind: Literal["job", "ad-hoc"]
    #: History runs with this very request, newest first (none: a job not run lately).
    runs: tuple[int, ...] = ()
    latest_start: str | None = None
    job: DeployedJob | None = None
    #: Ad-hoc runs that asked for what this job run asks for.
    ad_hoc_runs: tuple[int, ...] = ()
    #: The job whose selectors an ad-hoc run has (when that job was not run lately).
    same_nodes_as: DeployedJob | None = None
    #: Runs of the same job with other settings (the latest is kept).
    other_settings: int = 0


@dataclass(frozen=True)
class ImportedRun:
    name: str
    request: ObservedRequest
    source: RunSource


@dataclass(frozen=True)
class LeftOut:
    """A history run that is not in the spec, and why (our words only)."""

    run_id: int
    reason: str


@dataclass(frozen=True)
class ImportedSpec:
    """The spec of one environment, before it is written."""

    environment_id: str
    name: str
    url: str
    credentials: CredentialsBlock
    runs: tuple[ImportedRun, ...]
    left_out: tuple[LeftOut, ...]
    since: dt.datetime
    history_runs: int
    jobs_listed: bool
    notes: tuple[str, ...] = ()


@dataclass
class _Group:
    request: ObservedRequest
    runs: list[RunInfo] = field(default_factory=list)


def build_spec(history: History, *, url: str, name: str | None = None) -> ImportedSpec:
    """The spec for ``history``; ``name`` defaults to the environment's name as a slug."""
    # Coalesce should return no secret; one that does has them treated as such, before
    # any of its text is looked at.
    register_returned_secrets(history.runs)
    if KNOWN_SECRETS.undetectable:
        raise RunnerError(
            "a credential shorter than can be looked for in text is in use (the token, or "
            "one Coalesce returned): nothing was written, since Coalesce's text could not "
            "be checked for it",
            hint="use a longer token",
        )
    environment_id = history.environment.id
    left_out: list[LeftOut] = []
    notes: list[str] = []
    jobs = _jobs(history)
    by_job: dict[str, list[tuple[RunInfo, ObservedRequest]]] = {}
    ad_hoc: dict[tuple[object, ...], _Group] = {}
    for run in history.runs:
        try:
            request = observe(run)
        except Unusable as why:
            left_out.append(LeftOut(run.id, str(why)))
            continue
        if request.job_id is None:
            ad_hoc.setdefault(request.key(), _Group(request)).runs.append(run)
        elif request.job_id in jobs:
            by_job.setdefault(request.job_id, []).append((run, request))
        else:
            left_out.append(
                LeftOut(run.id, f"job {request.job_id} is not deployed in the environment now")
            )
    taken: set[str] = set()
    runs = [_job_run(job, by_job.get(job_id, []), taken) for job_id, job in jobs.items()]
    for group in ad_hoc.values():
        folded = _folded_into(group.request, runs)
        if folded is not None:
            index, job_run = folded
            source = job_run.source
            extra = tuple(run.id for run in group.runs)
            runs[index] = ImportedRun(
                job_run.name,
                job_run.request,
                RunSource(
                    "job",
                    source.runs,
                    source.latest_start,
                    source.job,
                    ad_hoc_runs=tuple(sorted((*source.ad_hoc_runs, *extra), reverse=True)),
                    other_settings=source.other_settings,
                ),
            )
            continue
        runs.append(_ad_hoc_run(group, runs, taken))
    if history.jobs is None:
        notes.append("this Coalesce does not list jobs: the jobs are those seen in the history")
    return ImportedSpec(
        environment_id=environment_id,
        name=name or _environment_name(history),
        url=url,
        credentials=infer_credentials(history.runs),
        runs=tuple(runs),
        left_out=tuple(left_out),
        since=history.since,
        history_runs=len(history.runs),
        jobs_listed=history.jobs is not None,
        notes=tuple(notes),
    )


def _jobs(history: History) -> dict[str, DeployedJob]:
    """The environment's jobs by id, in id order; without a jobs list, those the history
    shows (with the name the runs give)."""
    if history.jobs is not None:
        listed = {job.id: job for job in history.jobs if is_job_id(job.id)}
    else:
        listed = {}
        for run in history.runs:
            details = run.runDetails
            if details is not None and details.jobID is not None and is_job_id(details.jobID):
                job = DeployedJob(id=details.jobID, name=details.jobName)
                listed.setdefault(details.jobID, job)
    return dict(sorted(listed.items(), key=lambda item: int(item[0])))


def _job_run(
    job: DeployedJob, seen: list[tuple[RunInfo, ObservedRequest]], taken: set[str]
) -> ImportedRun:
    name = job.name if job.name and not holds_secret(job.name) else ""
    run_name = unique_name(slug(name), f"job-{job.id}", taken)
    if not seen:
        return ImportedRun(run_name, ObservedRequest(job_id=job.id), RunSource("job", job=job))
    latest, request = seen[0]
    same = tuple(run.id for run, other in seen if other.key() == request.key())
    return ImportedRun(
        run_name,
        request,
        RunSource(
            "job",
            same,
            latest.runStartTime,
            job,
            other_settings=len(seen) - len(same),
        ),
    )


def _job_selectors(job: DeployedJob) -> tuple[str | None, str | None]:
    return ObservedRequest(include=job.includeSelector, exclude=job.excludeSelector).selectors()


def _folded_into(
    request: ObservedRequest, runs: Iterable[ImportedRun]
) -> tuple[int, ImportedRun] | None:
    """The job run that already asks for what ``request`` asks for, if any."""
    for index, run in enumerate(runs):
        job = run.source.job
        if run.source.kind != "job" or job is None or not run.source.runs:
            continue
        plain = run.request.include is None and run.request.exclude is None
        if (
            plain
            and _job_selectors(job) == request.selectors()
            and run.request.settings() == request.settings()
        ):
            return index, run
    return None


def _ad_hoc_run(group: _Group, runs: list[ImportedRun], taken: set[str]) -> ImportedRun:
    request = group.request
    twin = next(
        (
            run.source.job
            for run in runs
            if run.source.job is not None
            and not run.source.runs
            and _job_selectors(run.source.job) == request.selectors()
        ),
        None,
    )
    label = request.include or ("all-nodes" if request.exclude is None else "all-but")
    name = unique_name("adhoc-" + slug(label, limit=40) if slug(label) else "", "adhoc", taken)
    latest = group.runs[0]
    return ImportedRun(
        name,
        request,
        RunSource(
            "ad-hoc",
            tuple(run.id for run in group.runs),
            latest.runStartTime,
            same_nodes_as=twin,
        ),
    )


def _environment_name(history: History) -> str:
    name = history.environment.name or ""
    if holds_secret(name):
        name = ""
    return slug(name) or f"environment-{history.environment.id}"
