"""What a write call (startRun, rerun, cancelRun) tells its caller.

A write either clearly happened, clearly did not (then it raises), or *may* have
happened: :class:`Ambiguous`. The last one is not an error to show, it is a question
the caller must answer by looking (``GET /api/v1/runs?environmentID=...``) before it
decides to send again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Ambiguous", "CancelAccepted", "CancelOutcome", "StartOutcome", "Started"]


@dataclass(frozen=True)
class Started:
    """Coalesce created the run; ``run_counter`` is its id in every ``/api/v1/runs`` call."""

    run_counter: int
    attempts: int = 1


@dataclass(frozen=True)
class CancelAccepted:
    """Coalesce accepted the cancel request (the run may take a moment to stop)."""

    run_id: int
    attempts: int = 1


@dataclass(frozen=True)
class Ambiguous:
    """The request may or may not have been carried out; it was not sent again.

    ``sent_at`` is the wall-clock time (Unix seconds) at which the last try was sent: a
    run created by it started no earlier. ``status`` is the HTTP status if there was an
    answer (e.g. 502), ``None`` if there was none (e.g. a read timeout). ``reason`` is
    secret-free text for a person.
    """

    reason: str
    method: str
    path: str
    sent_at: float
    status: int | None = None
    attempts: int = 1


StartOutcome = Started | Ambiguous
CancelOutcome = CancelAccepted | Ambiguous
