"""Between database rows and records: converters and the one way times are read.

A row is read by column name (and, for a lone value, by position) whatever the backend:
SQLite hands out :class:`sqlite3.Row`, the PostgreSQL backend rows that read alike.
SQLite stores a time as text (UTC ISO 8601 with microseconds, which sorts in time
order), PostgreSQL as ``timestamptz``: :func:`from_text` reads both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from runner.state.records import ApplyRecord, Outcome, RunRecord, RunStatus

# The columns of the journal's tables, in the order of their schema (both backends).
APPLY_ROW_COLUMNS = (
    "id",
    "who",
    "host",
    "git_commit",
    "environments",
    "argv",
    "plan_hash",
    "plan",
    "started_at",
    "finished_at",
    "outcome",
    "resumed",
)
RUN_ROW_COLUMNS = (
    "id",
    "apply_id",
    "environment",
    "batch",
    "name",
    "request",
    "request_hash",
    "status",
    "run_counter",
    "run_link",
    "intent_at",
    "fired_at",
    "started_at",
    "ended_at",
    "failed_nodes",
    "message",
    "changed_serial",
)


class Row(Protocol):
    def __getitem__(self, key: str | int, /) -> Any: ...


def apply_record(row: Row) -> ApplyRecord:
    return ApplyRecord(
        apply_id=row["id"],
        who=row["who"],
        host=row["host"],
        git_commit=row["git_commit"],
        environments=tuple(json.loads(row["environments"])),
        argv=tuple(json.loads(row["argv"])),
        plan_hash=row["plan_hash"],
        started_at=from_text(row["started_at"]),
        finished_at=optional_from_text(row["finished_at"]),
        outcome=Outcome(row["outcome"]) if row["outcome"] is not None else None,
        resumed=row["resumed"],
    )


def run_record(row: Row) -> RunRecord:
    return RunRecord(
        run_id=row["id"],
        apply_id=row["apply_id"],
        environment=row["environment"],
        batch=row["batch"],
        name=row["name"],
        request=json.loads(row["request"]),
        request_hash=row["request_hash"],
        status=RunStatus(row["status"]),
        run_counter=row["run_counter"],
        run_link=row["run_link"],
        intent_at=from_text(row["intent_at"]),
        fired_at=optional_from_text(row["fired_at"]),
        started_at=optional_from_text(row["started_at"]),
        ended_at=optional_from_text(row["ended_at"]),
        failed_nodes=tuple(json.loads(row["failed_nodes"])),
        message=row["message"],
    )


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime ({moment}) is ambiguous; give it a timezone")
    return moment.astimezone(UTC)


def to_text(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds: sorts as text in time order."""
    return aware(moment).isoformat(timespec="microseconds")


def from_text(stored: str | datetime) -> datetime:
    """A stored time, in UTC: text from SQLite, a datetime from PostgreSQL."""
    if isinstance(stored, datetime):
        return aware(stored)
    return datetime.fromisoformat(stored)


def optional_from_text(stored: str | datetime | None) -> datetime | None:
    return None if stored is None else from_text(stored)
