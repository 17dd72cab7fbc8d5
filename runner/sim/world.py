"""The world file: what the simulator pretends Coalesce contains, and how runs behave.

The format is documented in ``docs/simulator.md``. These models describe our own input,
so unknown keys are errors (``extra="forbid"``). :func:`load_world` reads a YAML file
with ruamel's safe loader; :func:`parse_world` validates data already loaded (the JSON
body of ``POST /_sim/reset``, for instance).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from runner.errors import RunnerError

__all__ = [
    "ENVIRONMENT_STATUSES",
    "Behavior",
    "DropFault",
    "DurationRule",
    "EnvironmentSpec",
    "FailureRule",
    "Faults",
    "JobSpec",
    "LatencyFault",
    "NodeSpec",
    "ProjectSpec",
    "RateLimitFault",
    "ServerErrorFault",
    "World",
    "WorldError",
    "load_world",
    "parse_world",
]

#: Coalesce's ``EnvironmentHealth`` values.
ENVIRONMENT_STATUSES = (
    "Deleting",
    "Deploying",
    "Failed Deploy",
    "Failed Dev Run",
    "Failed Refresh",
    "Initializing",
    "Refreshing",
    "Running Dev Run",
    "Waiting",
)

_DIGITS = re.compile(r"^[0-9]+$")


class WorldError(RunnerError):
    """A world file that cannot be loaded."""


def _digits(value: object) -> object:
    # IDs are digit strings on the wire; an integer in YAML is accepted and converted.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _DIGITS.match(value):
        return value
    raise ValueError(f"an ID is a string of digits such as '1', not {value!r}")


DigitId = Annotated[str, BeforeValidator(_digits)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]
EnvironmentStatus = Literal[
    "Deleting",
    "Deploying",
    "Failed Deploy",
    "Failed Dev Run",
    "Failed Refresh",
    "Initializing",
    "Refreshing",
    "Running Dev Run",
    "Waiting",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSpec(_Strict):
    """One node of a project's graph."""

    name: str = Field(min_length=1)
    location: str = Field(min_length=1)
    nodeType: str = "Stage"
    id: str | None = Field(default=None, description="defaults to a stable UUID from the name")
    subgraphs: tuple[str, ...] = ()
    dependsOn: tuple[str, ...] = Field(
        default=(), description="upstream nodes, as NAME or LOCATION.NAME"
    )


class JobSpec(_Strict):
    """A job: a named pair of selectors, run with ``runDetails.jobID``."""

    id: DigitId
    name: str
    include: str | None = None
    exclude: str | None = None


class ProjectSpec(_Strict):
    """Nodes and jobs, shared by every environment deployed from the project."""

    id: DigitId
    name: str
    nodes: tuple[NodeSpec, ...] = ()
    jobs: tuple[JobSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> ProjectSpec:
        _no_duplicates([f"{n.location}.{n.name}" for n in self.nodes], "node LOCATION.NAME")
        _no_duplicates([n.id for n in self.nodes if n.id is not None], "node id")
        _no_duplicates([j.id for j in self.jobs], "job id")
        return self


class EnvironmentSpec(_Strict):
    """An environment: a project deployed somewhere, with a health status."""

    id: DigitId
    name: str
    project: DigitId
    status: EnvironmentStatus = "Waiting"
    description: str = ""
    database: str | None = Field(default=None, description="defaults to <NAME>_DB")
    parameters: dict[str, str] = Field(default_factory=dict)
    maxConcurrentRuns: int | None = Field(
        default=None, ge=1, description="runs beyond this many wait (waitingToRun); None: no limit"
    )
    deployedCommit: str = Field(default="0000000", description="the commit shown as deployed")


class DurationRule(_Strict):
    """How long matching nodes take. Patterns are case-insensitive globs; a rule with no
    pattern matches every node. The first matching rule wins."""

    name: str | None = None
    location: str | None = None
    nodeType: str | None = None
    seconds: Seconds


class FailureRule(_Strict):
    """Which nodes fail, where, how often and with which error."""

    name: str | None = None
    location: str | None = None
    nodeType: str | None = None
    environments: tuple[DigitId, ...] | None = Field(
        default=None, description="only in these environments; None: everywhere"
    )
    probability: Probability = 1.0
    error: str = "SQL execution error"
    detail: str | None = None


class Behavior(_Strict):
    """How runs behave."""

    startDelay: Seconds = Field(default=0.3, description="time spent in waitingToRun")
    nodeSeconds: Seconds = Field(default=0.5, description="a node's duration if no rule matches")
    durations: tuple[DurationRule, ...] = ()
    failures: tuple[FailureRule, ...] = ()


_ALL_PATHS: tuple[str, ...] = ("/scheduler/*", "/api/*")
_CREATE_PATHS: tuple[str, ...] = ("/scheduler/startRun", "/scheduler/rerun")


class LatencyFault(_Strict):
    """Delay a response by ``ms`` (or a random time between ``ms`` and ``maxMs``)."""

    probability: Probability = 0.0
    ms: float = Field(default=0.0, ge=0.0)
    maxMs: float | None = Field(default=None, ge=0.0)
    paths: tuple[str, ...] = _ALL_PATHS


class RateLimitFault(_Strict):
    """Answer 429 with ``Retry-After`` instead of handling the request."""

    probability: Probability = 0.0
    retryAfter: int = Field(default=1, ge=0)
    paths: tuple[str, ...] = _ALL_PATHS


class ServerErrorFault(_Strict):
    """Answer a 5xx instead of handling the request (nothing happens on the server)."""

    probability: Probability = 0.0
    statuses: tuple[Literal[500, 502, 503, 504], ...] = (500, 502, 503)
    retryAfter: int | None = Field(default=1, ge=0, description="sent with 503 only")
    paths: tuple[str, ...] = _ALL_PATHS


class DropFault(_Strict):
    """Handle the request (a run IS created), then drop the connection unanswered."""

    probability: Probability = 0.0
    paths: tuple[str, ...] = _CREATE_PATHS


class Faults(_Strict):
    """Per-request fault probabilities. ``seed`` defaults to the world's seed."""

    seed: int | None = None
    latency: LatencyFault = LatencyFault()
    rateLimit: RateLimitFault = RateLimitFault()
    serverError: ServerErrorFault = ServerErrorFault()
    dropAfterCreate: DropFault = DropFault()


class World(_Strict):
    """Everything the simulator knows."""

    version: Literal[1] = 1
    seed: int = 0
    tokens: tuple[str, ...] = Field(default=("sim-demo-token",), min_length=1)
    host: str | None = Field(
        default=None, description="host for runLink; default: the host the request came to"
    )
    projects: tuple[ProjectSpec, ...] = ()
    environments: tuple[EnvironmentSpec, ...] = ()
    behavior: Behavior = Behavior()
    faults: Faults = Faults()
    listsJobs: bool = Field(
        default=True,
        description="false: answer 404 to an environment's jobs list, as Coalesce versions "
        "without it do (a job is still read by its ID)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> World:
        _no_duplicates([p.id for p in self.projects], "project id")
        _no_duplicates([e.id for e in self.environments], "environment id")
        projects = {p.id for p in self.projects}
        for env in self.environments:
            if env.project not in projects:
                raise ValueError(
                    f"environment {env.id} ({env.name}) names project {env.project!r}, "
                    f"which is not in projects: {sorted(projects)}"
                )
        return self


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def parse_world(data: Any, *, source: str = "world") -> World:
    """Validate already-loaded data as a world, or raise :class:`WorldError`."""
    if data is None:
        data = {}
    try:
        return World.model_validate(data)
    except ValidationError as error:
        raise WorldError(_describe(error, source), hint=_HINT) from None


_HINT = "See docs/simulator.md for the world file format."


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: the world is not valid:"]
    for item in error.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        lines.append(f"  {where.lstrip('.') or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


def load_world(path: str | Path) -> World:
    """Read and validate a world YAML file."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise WorldError(
            f"cannot read the world file {file}: {error.strerror}",
            hint="Pass an existing YAML file to --config.",
        ) from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(file)
        raise WorldError(f"{where}: invalid YAML: {error.problem}", hint=_HINT) from None
    except YAMLError as error:
        raise WorldError(f"{file}: invalid YAML: {error}", hint=_HINT) from None
    return parse_world(data, source=str(file))
