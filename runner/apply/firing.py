"""What differs between firing a run of a plan and rerunning a failed run.

The executor treats every job alike: it journals the intent, sends the request (the
request's type names its endpoint), journals the runCounter, looks for the run before
sending again when an answer is lost, waits, and resumes. A job's :class:`Firing` says
only what else is particular to it: how a run it created is recognised among the
environment's runs when the answer was lost, and what the journal notes about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from runner.apply.reconcile import find_created_rerun, find_created_run
from runner.coalesce import CoalesceClient
from runner.coalesce.requests import StartRunRequest, WriteRequest


@dataclass(frozen=True)
class Search:
    """Where a run whose answer was lost can be: among the environment's runs newer than
    ``newer_than`` (every run known before the job was sent), and claimed by no other
    job."""

    environment_id: str
    newer_than: int
    claimed: Set[int]


class Firing(Protocol):
    @property
    def noun(self) -> str:
        """What messages call the job: ``run`` or ``rerun``."""

    @property
    def journal_note(self) -> str | None:
        """Kept as the journal record's message once the job is fired (and before the
        reason of an answer that was lost)."""

    def uncertain_hint(self) -> str:
        """What a person can do about a job that may or may not have been created."""

    async def find_lost(
        self, client: CoalesceClient, redacted: Mapping[str, Any], search: Search
    ) -> int | None:
        """The runCounter of the run this job created, if Coalesce has it. ``redacted``
        is the job's secret-free request, as the journal keeps it."""


@dataclass(frozen=True)
class StartRun:
    """``POST /scheduler/startRun``: a run of the plan. A run whose answer was lost is
    recognised by its job, selectors, parallelism and parameters."""

    noun: ClassVar[str] = "run"
    journal_note: ClassVar[str | None] = None

    def uncertain_hint(self) -> str:
        return (
            "It is never fired again on its own: `runner status --refresh` or "
            "`runner apply --resume` look for it again, and "
            "`runner apply --resume --refire-uncertain` fires it anew if it is still not found"
        )

    async def find_lost(
        self, client: CoalesceClient, redacted: Mapping[str, Any], search: Search
    ) -> int | None:
        return await find_created_run(
            client,
            search.environment_id,
            redacted,
            newer_than=search.newer_than,
            claimed=search.claimed,
        )


@dataclass(frozen=True)
class Rerun:
    """``POST /scheduler/rerun`` of the run whose runCounter is ``original``. Coalesce
    names that run in the rerun's ``reRunID``: that is how a lost rerun is recognised."""

    original: int

    noun: ClassVar[str] = "rerun"

    @property
    def journal_note(self) -> str:
        # With this note, the journal's startRun-shaped request of a rerun (see
        # ``journal_request``) still says which run was rerun.
        return f"rerun of run {self.original}"

    def uncertain_hint(self) -> str:
        return (
            f"Look for a rerun of run {self.original} among the environment's runs in "
            "Coalesce; it is never sent again on its own: `runner apply --resume` looks for "
            "it again, and `runner apply --resume --refire-uncertain` sends it anew if it is "
            "still not found"
        )

    async def find_lost(
        self, client: CoalesceClient, redacted: Mapping[str, Any], search: Search
    ) -> int | None:
        return await find_created_rerun(
            client,
            search.environment_id,
            self.original,
            newer_than=search.newer_than,
            claimed=search.claimed,
        )


START_RUN = StartRun()


def firing_of(request: WriteRequest) -> Firing:
    """What is particular to the job that sends ``request``."""
    if isinstance(request, StartRunRequest):
        return START_RUN
    return Rerun(request.run_id)
