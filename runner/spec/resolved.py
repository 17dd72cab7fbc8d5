"""The result of loading specs: environments, their batches and runs, ready to plan."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from runner.coalesce.requests import StartRunRequest
from runner.errors import Problem
from runner.identity import RunKey
from runner.secrets import Secret
from runner.spec.templates import MissingSecret


@dataclass(frozen=True)
class RunSpec:
    """One startRun call as the specs describe it."""

    environment: str
    batch: str
    name: str
    request: StartRunRequest  # what is sent; its secrets are Secret objects
    timeout: float | None
    allow_empty: bool
    path: str
    line: int
    ignore_changes: tuple[str, ...] = ()  # startRun fields whose changes plan does not count
    if_running: str = "wait"  # when Coalesce already runs the same refresh: wait|skip|fire

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))


@dataclass(frozen=True)
class BatchSpec:
    name: str
    max_concurrent: int | None
    on_failure: str  # "stop" | "continue"
    runs: tuple[RunSpec, ...]


@dataclass(frozen=True)
class EnvironmentSpec:
    """One spec file: a Coalesce environment and the runs to fire in it."""

    name: str
    environment_id: str
    url: str
    token: Secret | None
    token_source: str
    path: str
    batches: tuple[BatchSpec, ...]
    files: tuple[str, ...] = ()  # the spec file and the bases it extends

    def runs(self) -> Iterator[RunSpec]:
        for batch in self.batches:
            yield from batch.runs

    @property
    def usable_token(self) -> Secret | None:
        """The Coalesce token, or ``None`` when there is none to use (not given, or a
        secret that was not set: ``token_source`` says where it should come from)."""
        token = self.token
        return None if token is None or isinstance(token, MissingSecret) else token


@dataclass(frozen=True)
class SpecSet:
    """Everything one load produced."""

    environments: tuple[EnvironmentSpec, ...]
    files: Mapping[str, str]  # every file read (specs and bases) -> sha256 of its bytes
    warnings: tuple[Problem, ...]
    unselected: tuple[str, ...] = ()  # environments read but left out (not rendered)

    def runs(self) -> Iterator[RunSpec]:
        for environment in self.environments:
            yield from environment.runs()
