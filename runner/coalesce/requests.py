"""The two requests that create runs, typed from the spec to the wire.

A :class:`StartRunRequest` is built once from a validated run (``spec/request.py``) and
is what the client sends; a :class:`RerunRequest` is built from it and a failed run's id.
Both are frozen, and their credentials keep :class:`~runner.secrets.Secret` values to
the end: :meth:`body` gives the wire's shape with the secrets still wrapped, and only
the client reveals them, while it encodes the body it sends. :meth:`redacted` is the
secret-free dict that plans hash and the journal keeps.

Field names are Python's; :meth:`body` writes the API's (coalesce-api.md §0-1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar

from runner.errors import RunnerError, quoted
from runner.secrets import Secret, redact_all

__all__ = [
    "FORCE_KEYS",
    "Credentials",
    "RerunRequest",
    "StartRunRequest",
    "UnresolvedJobError",
    "WriteRequest",
]

# coalesce-api.md §0.1: the published request key is forceIgnoreWorkspaceStatus, the
# product's (and the response's) name is forceIgnoreEnvironmentStatus. Sending both with
# the same value works whichever one the server reads.
FORCE_KEYS = ("forceIgnoreEnvironmentStatus", "forceIgnoreWorkspaceStatus")

#: ``userCredentials`` in the API's spelling; passwords and keys are :class:`Secret`.
Credentials = Mapping[str, "str | Secret"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class UnresolvedJobError(RunnerError):
    """A request naming its job by a name no plan resolved: never sent."""


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class _Sent(ABC):
    """What both requests carry besides their ``runDetails``: the force flag, the
    Snowflake credentials and the runtime parameters (Coalesce keeps none of them from one
    run to the next, so each request sends them again)."""

    force_ignore_environment_status: bool | None = field(default=None, kw_only=True)
    credentials: Credentials | None = field(default=None, kw_only=True)
    parameters: Mapping[str, str] = field(default_factory=lambda: _EMPTY, kw_only=True)

    endpoint: ClassVar[str]

    def __post_init__(self) -> None:
        # Frozen all the way down: a request that was planned cannot be edited on its way.
        object.__setattr__(self, "credentials", _frozen(self.credentials))
        object.__setattr__(self, "parameters", _frozen(self.parameters) or _EMPTY)

    @property
    def path(self) -> str:
        return f"/scheduler/{self.endpoint}"

    @property
    def forced(self) -> bool:
        """Whether the run goes ahead even when the environment's last deploy failed."""
        return self.force_ignore_environment_status is True

    def secrets(self) -> Iterator[Secret]:
        """Every secret the request carries."""
        for value in (self.credentials or {}).values():
            if isinstance(value, Secret):
                yield value

    def body(self) -> dict[str, Any]:
        """The JSON body in the API's shape; secrets are still :class:`Secret` objects."""
        return self._shape()

    def _shape(self) -> dict[str, Any]:
        details = self._details()
        if self.force_ignore_environment_status is not None:
            for key in FORCE_KEYS:
                details[key] = self.force_ignore_environment_status
        body: dict[str, Any] = {"runDetails": details}
        if self.credentials is not None:
            body["userCredentials"] = dict(self.credentials)
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body

    def redacted(self) -> Mapping[str, Any]:
        """:meth:`body` with every secret shown as ``(secret)``: what plans hash and show
        and what the journal keeps. Computed once; do not modify it."""
        return self._redacted

    @cached_property
    def _redacted(self) -> dict[str, Any]:
        redacted: dict[str, Any] = redact_all(self._shape())
        return redacted

    @abstractmethod
    def _details(self) -> dict[str, Any]:
        """The request's own ``runDetails``, before the force flag."""


@dataclass(frozen=True)
class StartRunRequest(_Sent):
    """``POST /scheduler/startRun``: refresh ``job_id``'s nodes, or the nodes the
    selectors pick, or (neither given) the whole environment.

    A spec may name its job instead (``job_name``); an online plan resolves the name to
    ``job_id`` (:meth:`resolved`). The name itself is never sent (startRun has no such
    field), and until it is resolved the request cannot be sent at all: without its
    jobID it would refresh every node of the environment."""

    endpoint: ClassVar[str] = "startRun"

    environment_id: str
    job_id: str | None = None
    include_nodes_selector: str | None = None
    exclude_nodes_selector: str | None = None
    parallelism: int | None = None
    job_name: str | None = None

    @property
    def names_a_job(self) -> bool:
        """Whether the job's selectors decide what runs (by ID, or by a name)."""
        return self.job_id is not None or self.job_name is not None

    @property
    def unresolved(self) -> bool:
        """Whether the job is named and its ID not known yet."""
        return self.job_name is not None and self.job_id is None

    def resolved(self, job_id: str) -> StartRunRequest:
        """This request for the job ``job_name`` turned out to be."""
        return replace(self, job_id=job_id)

    def body(self) -> dict[str, Any]:
        if self.unresolved:
            raise UnresolvedJobError(
                f"job {quoted(self.job_name or '')} was not resolved to its ID: a startRun "
                "without its jobID would refresh the whole environment, so it is not sent",
                hint="apply a plan made online (runner plan reads the environment's jobs)",
            )
        return self._shape()

    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"environmentID": self.environment_id}
        for key, value in (
            ("jobID", self.job_id),
            ("includeNodesSelector", self.include_nodes_selector),
            ("excludeNodesSelector", self.exclude_nodes_selector),
            ("parallelism", self.parallelism),
        ):
            if value is not None:
                details[key] = value
        return details


@dataclass(frozen=True)
class RerunRequest(_Sent):
    """``POST /scheduler/rerun``: run again the nodes that failed in run ``run_id``."""

    endpoint: ClassVar[str] = "rerun"

    run_id: int

    @classmethod
    def of(cls, run_id: int, start: StartRunRequest) -> RerunRequest:
        """The rerun of ``run_id`` with the force flag, credentials and parameters of the
        run's current ``start`` request (Coalesce carries none of them over)."""
        return cls(
            run_id,
            force_ignore_environment_status=start.force_ignore_environment_status,
            credentials=start.credentials,
            parameters=start.parameters,
        )

    def _details(self) -> dict[str, Any]:
        # A string, like every id the scheduler takes.
        return {"runID": str(self.run_id)}


#: A request that may create a run: sent at most once unless it provably never arrived.
WriteRequest = StartRunRequest | RerunRequest
