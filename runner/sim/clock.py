"""Simulated time.

The simulator never runs background tasks: a run's whole schedule is computed when the
run is created, and every answer is derived from "now" on a clock. Two clocks exist:

- :class:`SimClock` follows real time, scaled by a speed factor (at speed 10, one real
  second is ten simulated seconds), so a served simulator moves on by itself;
- :class:`ManualClock` stands still until a test advances it, so tests can look at a
  run at any instant without sleeping.

Times are POSIX timestamps in (simulated) seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_START", "Clock", "ManualClock", "SimClock", "format_time", "parse_time"]

#: Where a :class:`ManualClock` starts unless told otherwise: a fixed instant, so test
#: output does not depend on the day it runs.
DEFAULT_START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the simulated time."""

    def now(self) -> float:
        """The current simulated time, as a POSIX timestamp."""
        ...

    def describe(self) -> dict[str, object]:
        """What ``GET /_sim/clock`` shows about this clock."""
        ...


class SimClock:
    """Real time scaled by ``speed``: one real second is ``speed`` simulated seconds.

    Simulated time starts at the wall-clock time of creation (or ``start``) and never
    goes backwards, also when the speed changes.
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_speed(speed)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._anchor_sim = time.time() if start is None else start
        self._anchor_real = monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._anchor_sim + (self._monotonic() - self._anchor_real) * self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (the time already passed is kept)."""
        _check_speed(speed)
        with self._lock:
            real = self._monotonic()
            self._anchor_sim += (real - self._anchor_real) * self._speed
            self._anchor_real = real
            self._speed = speed

    def describe(self) -> dict[str, object]:
        return {"kind": "sim", "now": format_time(self.now()), "speed": self._speed}


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance by {seconds})")
        with self._lock:
            self._now += seconds
            return self._now

    def describe(self) -> dict[str, object]:
        return {"kind": "manual", "now": format_time(self._now)}


def _check_speed(speed: float) -> None:
    if not speed > 0:
        raise ValueError(f"the simulator speed must be greater than 0, not {speed}")


def format_time(timestamp: float) -> str:
    """A timestamp as Coalesce writes times: ISO 8601 UTC with milliseconds."""
    millis = round(timestamp * 1000)
    return f"{_second_text(millis // 1000)}{millis % 1000:03d}Z"


@lru_cache(maxsize=1024)
def _second_text(seconds: int) -> str:
    """The part of :func:`format_time` before the milliseconds (runs and requests come
    many to a second)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def parse_time(text: str) -> float:
    """The timestamp of an ISO 8601 time (``Z`` or an offset; naive means UTC).

    Raises ``ValueError`` for anything else."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
