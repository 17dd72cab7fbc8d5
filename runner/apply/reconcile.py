"""Finding a run whose answer was lost, so it is never fired twice.

When startRun or rerun may have reached Coalesce (a timeout or a reset after sending),
the run is looked for among the environment's recent runs before anything is sent
again. A candidate must be newer than every run apply already knows of and be claimed
by no other run of this apply. A run must also carry the same job, selectors,
parallelism and parameters; a rerun must name the run it reran in its ``reRunID``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from runner.coalesce import CoalesceClient
from runner.coalesce.matching import matches

# How far back to look: more runs than one apply fires in one environment at once.
LOOKBACK = 200


async def find_created_run(
    client: CoalesceClient,
    environment_id: str,
    request: Mapping[str, Any],
    *,
    newer_than: int,
    claimed: Set[int],
) -> int | None:
    """The runCounter of the run ``request`` created, or ``None`` if there is none."""
    candidates: list[int] = []
    async for summary in client.iter_runs(
        environment_id=environment_id, order_by="id", order_by_direction="desc", page_size=100
    ):
        if summary.id <= newer_than or len(candidates) >= LOOKBACK:
            break
        if summary.id not in claimed:
            candidates.append(summary.id)
    for run_id in sorted(candidates):  # oldest first: the one fired first is ours
        info = await client.get_run(run_id)
        if matches(info, request):
            return run_id
    return None


async def find_created_rerun(
    client: CoalesceClient,
    environment_id: str,
    rerun_of: int,
    *,
    newer_than: int,
    claimed: Set[int],
) -> int | None:
    """The runCounter of the rerun of run ``rerun_of`` that a lost answer created, or
    ``None``: the oldest run newer than ``newer_than``, claimed by nothing, whose
    ``reRunID`` names that run."""
    found: int | None = None
    async for summary in client.iter_runs(
        environment_id=environment_id, order_by="id", order_by_direction="desc", page_size=100
    ):
        if summary.id <= newer_than:
            break
        reran = str(summary.reRunID) if summary.reRunID is not None else None
        if summary.id not in claimed and reran == str(rerun_of):
            found = summary.id  # newest first: the last one seen is the oldest
    return found
