"""Between SQLite rows and records: converters and the one way times are stored."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from runner.state.records import ApplyRecord, Outcome, RunRecord, RunStatus


def apply_record(row: sqlite3.Row) -> ApplyRecord:
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


def run_record(row: sqlite3.Row) -> RunRecord:
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


def last_id(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # set by every INSERT
    return cursor.lastrowid


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime ({moment}) is ambiguous; give it a timezone")
    return moment.astimezone(UTC)


def to_text(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds: sorts as text in time order."""
    return aware(moment).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def optional_from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
