"""What the simulator saw: the request log, counters and requests in flight.

Tests of the product read these through ``/_sim/`` to check that nothing was fired
twice, that batches kept their order and that concurrency limits held. Secrets never
reach the log: credential values and the Authorization header are stored as
``(secret)``.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["REDACTED", "SECRET_KEYS", "Observations", "ParsedBody", "redact"]

REDACTED = "(secret)"
SECRET_KEYS = frozenset({"snowflakePassword", "snowflakeKeyPairKey", "snowflakeKeyPairPass"})


def redact(value: Any) -> Any:
    """A deep copy of a JSON value with every credential value replaced by ``(secret)``."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key in SECRET_KEYS and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


class ParsedBody:
    """A request body parsed as JSON, and its redacted copy made once, on first use.

    The request log and the run created from the request share that copy; neither
    changes it.
    """

    __slots__ = ("_redacted", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._redacted: Any = _NOT_YET

    @property
    def redacted(self) -> Any:
        if self._redacted is _NOT_YET:
            self._redacted = redact(self.value)
        return self._redacted


_NOT_YET: Any = object()


class Observations:
    """The request log and counters. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._log: list[dict[str, Any]] = []
            self._endpoints: Counter[str] = Counter()
            self._statuses: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._in_flight = 0
            self._max_in_flight = 0

    def enter(self) -> None:
        """A request arrived."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        """A request was answered (or dropped)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def record(self, entry: dict[str, Any]) -> None:
        """Add one answered request to the log and count it."""
        with self._lock:
            entry = {"seq": len(self._log) + 1, **entry}
            self._log.append(entry)
            self._endpoints[entry["endpoint"]] += 1
            self._statuses["dropped" if entry.get("dropped") else str(entry.get("status"))] += 1
            if entry.get("fault"):
                self._faults[entry["fault"]] += 1

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        """The entries after the one numbered ``since`` (all of them by default)."""
        with self._lock:
            return self._log[since:]  # entry n (its seq) is at index n - 1

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self._log),
                "endpoints": dict(sorted(self._endpoints.items())),
                "statuses": dict(sorted(self._statuses.items())),
                "faults": dict(sorted(self._faults.items())),
                "inFlight": self._in_flight,
                "maxInFlight": self._max_in_flight,
            }
