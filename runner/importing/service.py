"""Reading an environment and making its spec: the one entry point of the package."""

from __future__ import annotations

import datetime as dt
import re

from runner.coalesce.client import CoalesceClient
from runner.errors import RunnerError
from runner.importing.build import ImportedSpec, build_spec
from runner.importing.history import read_history
from runner.spec.models import DEFAULT_URL

__all__ = ["DEFAULT_SINCE", "aimport_environment", "parse_since"]

DEFAULT_SINCE = "14d"
_SINCE = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?")
_UNITS = (
    dt.timedelta(weeks=1),
    dt.timedelta(days=1),
    dt.timedelta(hours=1),
    dt.timedelta(minutes=1),
)
MAX_SINCE = dt.timedelta(days=3660)


def parse_since(text: str) -> dt.timedelta:
    """``14d``, ``2w``, ``36h``, ``1d12h``, ``90m``: how far back to read runs."""
    match = _SINCE.fullmatch(text.strip())
    if not match or not any(match.groups()):
        raise RunnerError(
            f"{text!r} is not a time span",
            hint="write it as weeks, days, hours and minutes, e.g. 14d, 2w, 36h or 1d12h",
        )
    span = sum(
        (unit * int(count) for unit, count in zip(_UNITS, match.groups(), strict=True) if count),
        dt.timedelta(),
    )
    if not dt.timedelta(0) < span <= MAX_SINCE:
        raise RunnerError(f"--since {text} is not between one minute and ten years")
    return span


async def aimport_environment(
    client: CoalesceClient,
    environment_id: str,
    *,
    url: str = DEFAULT_URL,
    since: dt.timedelta = dt.timedelta(days=14),
    name: str | None = None,
    now: dt.datetime | None = None,
) -> ImportedSpec:
    """Read environment ``environment_id`` through ``client`` and make its spec (whose
    ``coalesce.url`` is ``url``; its name ``name``, or the environment's own)."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    history = await read_history(client, environment_id, since=moment - since)
    return build_spec(history, url=url, name=name)
