"""An environment's deployed jobs, as Coalesce lists them: the one place that knows
them (plan checks a run's ``jobID`` against them; a job named instead of numbered is
resolved here too).

Coalesce lists them at ``GET /api/v1/environments/{id}/jobs``. An older Coalesce has no
such list and answers 404: the jobs are then unknown (:func:`read_jobs` gives
``None``), which is "not checked", not an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runner.coalesce.client import CoalesceClient
from runner.coalesce.errors import CoalesceAPIError
from runner.coalesce.models import DeployedJob
from runner.errors import quoted
from runner.secrets import foreign_name

__all__ = ["EnvironmentJobs", "read_jobs"]

NOT_FOUND = 404
#: Jobs named in a message, at most.
LISTED = 20


@dataclass(frozen=True)
class EnvironmentJobs:
    """The jobs deployed in one environment."""

    environment_id: str
    jobs: tuple[DeployedJob, ...]

    def __iter__(self) -> Iterator[DeployedJob]:
        return iter(self.jobs)

    def by_id(self, job_id: str) -> DeployedJob | None:
        return next((job for job in self.jobs if job.id == str(job_id)), None)

    def named(self, name: str) -> list[DeployedJob]:
        """The jobs called ``name`` (Coalesce does not keep names unique)."""
        return [job for job in self.jobs if job.name == name]

    def listing(self) -> str:
        """``5 'staging', 7 'Nightly marts'`` for a message; names are Coalesce's text,
        each withheld if it holds a secret."""
        if not self.jobs:
            return "none"
        shown = [_job_text(job) for job in sorted(self.jobs, key=_numeric_id)[:LISTED]]
        more = len(self.jobs) - LISTED
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


async def read_jobs(client: CoalesceClient, environment_id: str) -> EnvironmentJobs | None:
    """The environment's jobs, or ``None`` when this Coalesce does not list jobs."""
    try:
        jobs = await client.list_jobs(environment_id)
    except CoalesceAPIError as error:
        if error.status == NOT_FOUND:
            return None
        raise
    return EnvironmentJobs(environment_id, tuple(jobs))


def _job_text(job: DeployedJob) -> str:
    job_id, name = foreign_name(job.id) or "?", foreign_name(job.name)
    return f"{job_id} {quoted(name)}" if name else job_id


def _numeric_id(job: DeployedJob) -> tuple[int, str]:
    return (int(job.id), job.id) if job.id.isdigit() else (1 << 62, job.id)
