"""A refresh request as Coalesce's run history shows it.

``GET /api/v1/runs?detail=true`` gives each run's ``runDetails`` (job, selectors,
parallelism, force flag) and ``runTimeParameters``; :func:`observe` reads them into an
:class:`ObservedRequest`, or says in its own words why a run cannot become a spec run
(:class:`Unusable`). Two runs with equal :meth:`ObservedRequest.key` are the same
request: credentials are never part of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.coalesce.jobs import is_job_id
from runner.coalesce.models import RunInfo
from runner.coalesce.requests import FORCE_KEYS
from runner.importing.text import Unwritable, template_safe
from runner.secrets import holds_secret
from runner.selectors import SelectorError, canonical_text
from runner.spec.models import MAX_PARALLELISM, parameter_text

__all__ = ["ObservedRequest", "Unusable", "observe"]


Parameters = tuple[tuple[str, str], ...]


class Unusable(ValueError):
    """A run that cannot be written as a spec run; the message is ours, never
    Coalesce's text."""


@dataclass(frozen=True)
class ObservedRequest:
    """What a refresh run asked for, without credentials."""

    job_id: str | None = None
    include: str | None = None
    exclude: str | None = None
    parallelism: int | None = None
    force: bool = False
    parameters: Parameters = ()

    def key(self) -> tuple[Any, ...]:
        """Equal for two runs that asked for the same refresh."""
        return (self.job_id, self.selectors(), self.settings())

    def selectors(self) -> tuple[str | None, str | None]:
        """The selectors as compared (surrounding blanks aside)."""
        return (_stripped(self.include), _stripped(self.exclude))

    def settings(self) -> tuple[int | None, bool, Parameters]:
        """What a run sets besides its nodes: parallelism, the force flag, parameters."""
        return (self.parallelism, self.force, self.parameters)

    def body(self, environment_id: str) -> dict[str, Any]:
        """The startRun body this request is, without ``userCredentials``: what a plan of
        the imported run shows as its request."""
        details: dict[str, Any] = {"environmentID": environment_id}
        for key, value in (
            ("jobID", self.job_id),
            ("includeNodesSelector", self.include),
            ("excludeNodesSelector", self.exclude),
            ("parallelism", self.parallelism),
        ):
            if value is not None:
                details[key] = value
        if self.force:
            details.update(dict.fromkeys(FORCE_KEYS, True))
        body: dict[str, Any] = {"runDetails": details}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def observe(info: RunInfo) -> ObservedRequest:
    """The request run ``info`` was started with; raises :class:`Unusable`."""
    details = info.runDetails
    if details is None:
        raise Unusable("Coalesce gave no runDetails for it")
    job_id = details.jobID
    if job_id is not None and not is_job_id(job_id):
        raise Unusable("its jobID is not a number")
    include = _selector(details.includeNodesSelector, "include")
    exclude = _selector(details.excludeNodesSelector, "exclude")
    parallelism = details.parallelism
    if parallelism is not None and not 1 <= parallelism <= MAX_PARALLELISM:
        raise Unusable(f"its parallelism is outside 1 to {MAX_PARALLELISM}")
    force = (
        details.forceIgnoreEnvironmentStatus is True or details.forceIgnoreWorkspaceStatus is True
    )
    raw = info.runTimeParameters
    if raw is None:
        raw = details.runTimeParameters
    return ObservedRequest(
        job_id=job_id,
        include=include,
        exclude=exclude,
        parallelism=parallelism,
        force=force,
        parameters=_parameters(raw or {}),
    )


def _selector(value: str | None, which: str) -> str | None:
    if value is None or not value.strip():
        return None
    _writable(value, f"its {which} selector")
    try:
        canonical_text(value)
    except SelectorError:
        raise Unusable(f"its {which} selector is not one runner can read") from None
    return value


def _parameters(raw: Mapping[str, Any]) -> Parameters:
    pairs = []
    for key, value in raw.items():
        text = _parameter_text(value)
        _writable(key, "a parameter's name")
        _writable(text, "a parameter's value")
        pairs.append((key, text))
    return tuple(sorted(pairs))


def _parameter_text(value: Any) -> str:
    # Coalesce keeps strings; numbers and booleans become text as a spec makes them.
    text = parameter_text(value)
    if text is not None:
        return text
    raise Unusable("a parameter's value is not text, a number or a boolean")


def _writable(text: str, what: str) -> None:
    if holds_secret(text):
        raise Unusable(f"{what} holds a credential")
    try:
        template_safe(text)
    except Unwritable as error:
        raise Unusable(f"{what} cannot be written in a spec: {error}") from None


def _stripped(value: str | None) -> str | None:
    return None if value is None else value.strip() or None
