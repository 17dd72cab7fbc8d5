"""Seeded per-request fault decisions.

For every API request the injector draws the same number of random values in the same
order, whatever the configuration, so a given seed always yields the same sequence of
decisions for the same sequence of requests.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase

from runner.sim.world import Faults

__all__ = ["FaultDecision", "FaultInjector"]


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request."""

    delay_ms: float = 0.0
    status: int | None = None  # answer this status instead of handling the request
    retry_after: int | None = None
    drop: bool = False  # handle the request, then drop the connection

    @property
    def label(self) -> str | None:
        """A short name for the request log (``None`` when nothing was injected)."""
        if self.status is not None:
            return str(self.status)
        if self.drop:
            return "drop"
        return "latency" if self.delay_ms > 0 else None


class FaultInjector:
    """Decides, request by request, which fault to inject."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        self.configure(faults, seed)

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def seed(self) -> int:
        return self._seed

    def configure(self, faults: Faults, seed: int) -> None:
        """Use ``faults`` from now on, restarting the random sequence from ``seed``
        (``faults.seed`` wins when set)."""
        with self._lock:
            self._faults = faults
            self._seed = faults.seed if faults.seed is not None else seed
            self._random = random.Random(self._seed)

    def decide(self, path: str) -> FaultDecision:
        with self._lock:
            draws = [self._random.random() for _ in range(6)]
        return self._decision(path, draws)

    def _decision(self, path: str, draws: list[float]) -> FaultDecision:
        faults = self._faults
        latency, latency_amount, limited, failed, which_status, dropped = draws
        delay = 0.0
        if _applies(faults.latency.probability, faults.latency.paths, path, latency):
            low = faults.latency.ms
            high = faults.latency.maxMs if faults.latency.maxMs is not None else low
            delay = low + (max(high, low) - low) * latency_amount
        if _applies(faults.rateLimit.probability, faults.rateLimit.paths, path, limited):
            return FaultDecision(delay, 429, faults.rateLimit.retryAfter)
        errors = faults.serverError
        if errors.statuses and _applies(errors.probability, errors.paths, path, failed):
            status = errors.statuses[
                min(int(which_status * len(errors.statuses)), len(errors.statuses) - 1)
            ]
            return FaultDecision(delay, status, errors.retryAfter if status == 503 else None)
        drop = faults.dropAfterCreate
        return FaultDecision(delay, drop=_applies(drop.probability, drop.paths, path, dropped))


def _applies(probability: float, paths: tuple[str, ...], path: str, draw: float) -> bool:
    return draw < probability and any(fnmatchcase(path, pattern) for pattern in paths)
