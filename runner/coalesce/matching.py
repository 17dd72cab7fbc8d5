"""Whether a run Coalesce reports is the refresh a request asks for.

Used to find a run whose startRun answer was lost (:func:`matches`: the very request)
and to see that the same refresh is already running, started by anyone
(:func:`same_refresh`). Requests are the secret-free dicts plans and the journal keep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.coalesce.models import RunInfo

__all__ = ["matches", "same_refresh", "since_text"]


def matches(info: RunInfo, request: Mapping[str, Any]) -> bool:
    """Whether the run Coalesce reports is the one ``request`` asks for."""
    if not same_refresh(info, request):
        return False
    details = info.runDetails
    assert details is not None  # same_refresh says no otherwise
    parallelism = request.get("runDetails", {}).get("parallelism")
    return parallelism is None or details.parallelism in (None, parallelism)


def same_refresh(info: RunInfo, request: Mapping[str, Any]) -> bool:
    """Whether the run Coalesce reports refreshes what ``request`` would: the same job,
    selectors and parameters (how many nodes run at once aside)."""
    details = info.runDetails
    if details is None:
        return False
    wanted = request.get("runDetails", {})
    pairs = (
        (details.jobID, wanted.get("jobID")),
        (details.includeNodesSelector or None, wanted.get("includeNodesSelector")),
        (details.excludeNodesSelector or None, wanted.get("excludeNodesSelector")),
    )
    if any(_text(have) != _text(want) for have, want in pairs):
        return False
    parameters = info.runTimeParameters or details.runTimeParameters
    wanted_parameters = request.get("parameters")
    return not (
        wanted_parameters and parameters is not None and dict(parameters) != wanted_parameters
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def since_text(started: str | None) -> str:
    """`` since 14:02:05 UTC`` from a run's start time as Coalesce gives it; nothing when
    it is not a time (it is Coalesce's text: only a parsed time is shown)."""
    if not started:
        return ""
    try:
        moment = dt.datetime.fromisoformat(started)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return f" since {moment:%H:%M:%S} UTC"
