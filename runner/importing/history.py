"""What Coalesce holds about an environment: its name, its jobs and its recent refresh
runs (newest first), read with a bounded number of requests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from runner.coalesce.client import CoalesceClient
from runner.coalesce.jobs import EnvironmentJobs, read_jobs
from runner.coalesce.models import Environment, RunInfo

__all__ = ["MAX_RUNS", "History", "read_history"]

#: Runs read at most; the newest are kept.
MAX_RUNS = 5000
REFRESH = "refresh"


@dataclass(frozen=True)
class History:
    """One environment as Coalesce shows it."""

    environment: Environment
    #: ``None`` when this Coalesce does not list jobs (an older version answers 404).
    jobs: EnvironmentJobs | None
    #: Refresh runs started since ``since`` (reruns aside), newest first.
    runs: tuple[RunInfo, ...]
    since: dt.datetime
    #: Reruns in the window: they repeat an earlier run's request and are not imported.
    reruns: int = 0
    #: Runs whose start time Coalesce did not give as a time.
    undated: int = 0
    #: Whether more than :data:`MAX_RUNS` runs were in the window (the oldest were not read).
    truncated: bool = False


async def read_history(
    client: CoalesceClient,
    environment_id: str,
    *,
    since: dt.datetime,
    max_runs: int = MAX_RUNS,
) -> History:
    """Read the environment, its jobs and its refresh runs started since ``since``."""
    environment = await client.get_environment(environment_id)
    jobs = await read_jobs(client, environment_id)
    runs: list[RunInfo] = []
    reruns = undated = 0
    truncated = False
    async for run in client.iter_run_details(
        environment_id=environment_id,
        run_type=REFRESH,
        order_by="runStartTime",
        order_by_direction="desc",
    ):
        started = _time(run.runStartTime)
        if started is None:
            undated += 1
            continue
        if started < since:
            break  # newest first: every later run is older still
        if not _refresh_of(run, environment_id):
            continue
        if run.reRunID is not None:
            reruns += 1
            continue
        if len(runs) >= max_runs:
            truncated = True
            break
        runs.append(run)
    # Without a jobs list (an older Coalesce), the jobs are those the history shows.
    listed = jobs if jobs.listed else None
    return History(environment, listed, tuple(runs), since, reruns, undated, truncated)


def _refresh_of(run: RunInfo, environment_id: str) -> bool:
    # The filters were sent; a Coalesce that ignores one must not slip in other runs.
    if run.runType not in (None, REFRESH):
        return False
    details = run.runDetails
    listed = run.model_extra.get("environmentID") if run.model_extra else None
    shown = details.environmentID if details is not None else None
    return all(value is None or str(value) == environment_id for value in (shown, listed))


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
