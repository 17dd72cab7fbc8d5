"""What the list endpoints filter on and how they sort: runs, environments, nodes, jobs."""

from __future__ import annotations

from collections.abc import Mapping

from runner.sim.clock import format_time, parse_time
from runner.sim.graph import SimNode
from runner.sim.paging import Ordering
from runner.sim.runs import Run
from runner.sim.validation import bad_request
from runner.sim.world import EnvironmentSpec, JobSpec

__all__ = [
    "BY_ID_OR_NAME",
    "RUN_ORDERS",
    "RUN_TYPE",
    "environment_ordering",
    "job_ordering",
    "node_ordering",
    "run_matches",
    "run_ordering",
]

RUN_TYPE = "refresh"
RUN_ORDERS = ("id", "runStartTime", "runEndTime")
BY_ID_OR_NAME = ("id", "name")


def run_matches(run: Run, params: Mapping[str, str], now: float) -> bool:
    """Whether ``run`` passes the ``environmentID``, ``runStatus`` and ``runType`` filters."""
    environment_id = params.get("environmentID")
    if environment_id is not None and run.environment_id != environment_id:
        return False
    status = params.get("runStatus")
    if status is not None and run.status(now) != status:
        return False
    run_type = params.get("runType")
    return run_type is None or run_type == RUN_TYPE


def _millis(value: float) -> int:
    return round(value * 1000)


def _time_cursor(text: str, order_by: str) -> int:
    try:
        return _millis(parse_time(text))
    except ValueError:
        raise bad_request(
            f"Invalid startingFrom: {text!r}",
            f"With orderBy={order_by}, startingFrom is a time such as "
            "2026-01-05T06:00:00.000Z (the next value of the previous page).",
        ) from None


def _int_cursor(text: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    raise bad_request(f"Invalid startingFrom: {text!r}", "With orderBy=id, startingFrom is an ID.")


def run_ordering(order_by: str, now: float) -> Ordering[Run]:
    if order_by == "runStartTime":
        return Ordering(
            key=lambda run: (_millis(run.created),),
            cursor_of=lambda run: format_time(run.created),
            parse_cursor=lambda text: (_time_cursor(text, order_by),),
        )
    if order_by == "runEndTime":
        # Runs that have not ended sort after those that have (ascending) and have
        # their id as cursor, since they have no end time yet.
        def key(run: Run) -> tuple[int, int]:
            return (0, _millis(run.finished_at)) if run.is_terminal(now) else (1, run.id)

        def cursor_of(run: Run) -> str:
            return format_time(run.finished_at) if run.is_terminal(now) else str(run.id)

        def parse_cursor(text: str) -> tuple[int, int]:
            return (1, int(text)) if text.isdigit() else (0, _time_cursor(text, order_by))

        return Ordering(key, cursor_of, parse_cursor)
    return Ordering(
        key=lambda run: (run.id,),
        cursor_of=lambda run: str(run.id),
        parse_cursor=lambda text: (_int_cursor(text),),
    )


def environment_ordering(order_by: str) -> Ordering[EnvironmentSpec]:
    if order_by == "name":
        return Ordering(lambda e: (e.name,), lambda e: e.name, lambda text: (text,))
    return Ordering(lambda e: (int(e.id),), lambda e: e.id, lambda text: (_int_cursor(text),))


def job_ordering(order_by: str) -> Ordering[JobSpec]:
    if order_by == "name":
        return Ordering(lambda j: (j.name,), lambda j: j.name, lambda text: (text,))
    return Ordering(lambda j: (int(j.id),), lambda j: j.id, lambda text: (_int_cursor(text),))


def node_ordering(order_by: str) -> Ordering[SimNode]:
    if order_by == "name":
        return Ordering(lambda n: (n.name,), lambda n: n.name, lambda text: (text,))
    return Ordering(lambda n: (n.id,), lambda n: n.id, lambda text: (text,))
