"""An environment's deployed jobs, as Coalesce lists them: the one place that knows
them (plan checks a run's ``jobID`` against them and resolves a job named instead of
numbered; apply checks that the names still mean what the plan said).

Coalesce lists them at ``GET /api/v1/environments/{id}/jobs``. An older Coalesce has no
such list and answers 404: the jobs a spec numbers are then read one by one
(``/jobs/{jobID}``), and a job named cannot be resolved (:attr:`EnvironmentJobs.listed`
is false).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from runner.coalesce.client import CoalesceClient
from runner.coalesce.errors import CoalesceAPIError
from runner.coalesce.models import DeployedJob
from runner.errors import did_you_mean, quoted
from runner.secrets import foreign_name

__all__ = ["EnvironmentJobs", "JobResolution", "id_text", "is_job_id", "read_jobs"]

NOT_FOUND = 404
#: Jobs named in a message, at most.
LISTED = 20


@dataclass(frozen=True)
class EnvironmentJobs:
    """The jobs deployed in one environment."""

    environment_id: str
    jobs: tuple[DeployedJob, ...]
    # False when this Coalesce has no jobs list: ``jobs`` then holds only the jobs
    # asked for by ID that exist, and names cannot be resolved.
    listed: bool = True

    def __iter__(self) -> Iterator[DeployedJob]:
        return iter(self.jobs)

    def by_id(self, job_id: str) -> DeployedJob | None:
        return next((job for job in self.jobs if job.id == str(job_id)), None)

    def named(self, name: str) -> list[DeployedJob]:
        """The jobs called ``name`` (Coalesce does not keep names unique)."""
        return [job for job in self.jobs if job.name == name]

    def resolve(self, name: str) -> JobResolution:
        """The one job called ``name``, or why there is none to take."""
        if not self.listed:
            return JobResolution(
                name,
                problem=f"this Coalesce does not list the jobs of environment "
                f"{self.environment_id} (it answered 404), so job {quoted(name)} cannot be "
                "resolved by name: use jobID",
            )
        found = self.named(name)
        if len(found) == 1:
            return JobResolution(name, job=found[0])
        if found:
            ids = [id_text(job.id) for job in sorted(found, key=_numeric_id)]
            return JobResolution(
                name,
                problem=f"{len(found)} jobs of environment {self.environment_id} are called "
                f"{quoted(name)} (IDs {', '.join(ids)}): use jobID to say which one",
            )
        names = [n for n in (foreign_name(job.name) for job in self.jobs if job.name) if n]
        meant = did_you_mean(name, names)
        return JobResolution(
            name,
            problem=f"environment {self.environment_id} has no job called {quoted(name)} "
            f"(its jobs: {self.listing()})" + (f"; did you mean {quoted(meant)}?" if meant else ""),
        )

    def listing(self) -> str:
        """``5 'staging', 7 'Nightly marts'`` for a message; names are Coalesce's text,
        each withheld if it holds a secret."""
        if not self.jobs:
            return "none"
        shown = [_job_text(job) for job in sorted(self.jobs, key=_numeric_id)[:LISTED]]
        more = len(self.jobs) - LISTED
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class JobResolution:
    """What a job name means in an environment: one job, or a problem to report."""

    name: str
    job: DeployedJob | None = None
    problem: str | None = None


async def read_jobs(
    client: CoalesceClient, environment_id: str, job_ids: Iterable[str] = ()
) -> EnvironmentJobs:
    """The environment's jobs. A Coalesce without the jobs list (404) is asked for each
    of ``job_ids`` instead, the IDs the specs name."""
    try:
        jobs = await client.list_jobs(environment_id)
    except CoalesceAPIError as error:
        if error.status != NOT_FOUND:
            raise
    else:
        return EnvironmentJobs(environment_id, tuple(jobs))
    found = await asyncio.gather(
        *(_job_or_none(client, environment_id, job_id) for job_id in sorted(set(job_ids)))
    )
    return EnvironmentJobs(
        environment_id, tuple(job for job in found if job is not None), listed=False
    )


async def _job_or_none(
    client: CoalesceClient, environment_id: str, job_id: str
) -> DeployedJob | None:
    try:
        return await client.get_job(environment_id, job_id)
    except CoalesceAPIError as error:
        if error.status == NOT_FOUND:
            return None
        raise


def is_job_id(text: str) -> bool:
    """Whether ``text`` is a job ID a startRun can carry: ASCII digits (``str.isdigit``
    alone also takes superscripts and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def id_text(job_id: str) -> str:
    """A job ID from Coalesce, for a message: its digits as they are; anything else
    (Coalesce's text, untrusted) quoted, cut short, and made visible."""
    if is_job_id(job_id):
        return job_id
    return quoted(foreign_name(job_id, limit=40))  # (repr: no control character left)


def _job_text(job: DeployedJob) -> str:
    name = foreign_name(job.name)
    return f"{id_text(job.id)} {quoted(name)}" if name else id_text(job.id)


def _numeric_id(job: DeployedJob) -> tuple[int, str]:
    job_id = job.id
    return (int(job_id), job_id) if is_job_id(job_id) else (1 << 62, job_id)
