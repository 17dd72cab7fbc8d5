"""Copying a whole state to another: ``runner state copy FROM TO``.

Everything the journal holds is copied, row for row and with the same ids: the applies
(with the plan each one executed), their environments, every run, and the serials, so
that ``plan``, ``status``, ``--changed-only`` and ``apply --resume`` read the target as
they read the source (a plan file saved against the source is still current against the
target). Locks are not copied: a lock belongs to an apply running against the source,
and guards nothing in the target.

Either way between SQLite and PostgreSQL (and SQLite to SQLite, PostgreSQL to
PostgreSQL). The source is read in one snapshot, and is only read. The target is
written in one transaction, which holds its journal's write lock from the start (no
apply records anything meanwhile): it is refused if the target holds anything, unless
``force`` (then what it held is replaced, but never under an apply that holds a lock
there). Before committing, every copied row is read back from the target and its
canonical digest compared with the source's: on any difference, or any error, the
transaction is rolled back and the target is left as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.errors import RunnerError
from runner.state.backends import open_state
from runner.state.location import (
    PostgresLocation,
    StateLocation,
    is_postgres_url,
    postgres_location,
)
from runner.state.records import LockInfo
from runner.state.rows import APPLY_ROW_COLUMNS, RUN_ROW_COLUMNS, from_text, to_text
from runner.state.store import Database, SqlState


@dataclass(frozen=True)
class Table:
    """A table of the journal, as copied: its columns, its key, its time columns."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    times: frozenset[str] = frozenset()


#: The journal's tables, parents first. Every column is copied (the two schemas have the
#: same columns; only the types of times differ).
TABLES: tuple[Table, ...] = (
    Table("applies", APPLY_ROW_COLUMNS, ("id",), frozenset({"started_at", "finished_at"})),
    Table("apply_environments", ("apply_id", "environment"), ("apply_id", "environment")),
    Table(
        "runs",
        RUN_ROW_COLUMNS,
        ("id",),
        frozenset({"intent_at", "fired_at", "started_at", "ended_at"}),
    ),
    Table("serials", ("environment", "value"), ("environment",)),
)


@dataclass(frozen=True)
class TableCopy:
    """One table as read: its rows in key order, as the database gave them."""

    table: Table
    rows: tuple[tuple[Any, ...], ...]
    digest: str


@dataclass(frozen=True)
class Contents:
    """Everything a state's journal holds, read in one snapshot."""

    tables: tuple[TableCopy, ...]

    def _rows(self, table: str) -> tuple[tuple[Any, ...], ...]:
        return next(copy.rows for copy in self.tables if copy.table.name == table)

    def count(self, table: str) -> int:
        return len(self._rows(table))

    @property
    def serial(self) -> int:
        """The sum of the environments' serials, as ``runner.state`` shows it."""
        return sum(int(value) for _, value in self._rows("serials"))

    @property
    def digest(self) -> str:
        """One digest of every row of every table."""
        whole = hashlib.sha256()
        for copy in self.tables:
            whole.update(f"{copy.table.name} {copy.digest}\n".encode())
        return whole.hexdigest()

    @property
    def empty(self) -> bool:
        return all(not copy.rows for copy in self.tables)

    def describe(self) -> str:
        """``3 applies, 12 runs, serial 40``."""
        applies, runs = self.count("applies"), self.count("runs")
        return (
            f"{applies} {'apply' if applies == 1 else 'applies'}, "
            f"{runs} run{'' if runs == 1 else 's'}, serial {self.serial}"
        )


@dataclass(frozen=True)
class CopyResult:
    """What ``copy_state`` did: where from, where to, what was copied, its digest, the
    locks of the source left behind, and what the target held before (with ``force``)."""

    source: StateLocation
    target: StateLocation
    copied: Contents
    digest: str
    locks_not_copied: tuple[LockInfo, ...]
    replaced: Contents | None


def copy_state(
    source: StateLocation | str, target: StateLocation | str, *, force: bool = False
) -> CopyResult:
    """Copy the whole history of the state at ``source`` into the state at ``target``
    (created if need be), verified; see the module's text for the rules."""
    source, target = _location(source), _location(target)
    if _same(source, target):
        raise RunnerError(
            f"{source} is both the source and the target of the copy",
            hint="copy to another file, database or schema (?schema=NAME)",
        )
    if not _exists(source):
        raise RunnerError(
            f"there is no state at {source} to copy",
            hint="check FROM: a state file's path, or a postgresql:// URL",
        )
    with open_state(source, readonly=True) as reader:
        if isinstance(source, PostgresLocation) and _not_created(reader):
            raise RunnerError(
                f"there is no state at {source} to copy (no schema {source.schema} there)",
                hint="check FROM's database and its schema= parameter",
            )
        with reader.reading("read the state to copy") as db:
            contents = read_contents(db)
            source_place = _place(db, source)
        source_locks = tuple(reader.list_locks())
    with open_state(target) as writer:
        replaced = _write(writer, contents, force=force, source_place=source_place)
    return CopyResult(
        source=source,
        target=target,
        copied=contents,
        digest=contents.digest,
        locks_not_copied=source_locks,
        replaced=replaced,
    )


def _location(given: StateLocation | str) -> StateLocation:
    if isinstance(given, str):
        return postgres_location(given) if is_postgres_url(given) else Path(given).expanduser()
    return given


def _same(source: StateLocation, target: StateLocation) -> bool:
    """Whether both name one state: one file, or one schema of one database (whoever
    connects to it)."""
    if isinstance(source, PostgresLocation) and isinstance(target, PostgresLocation):
        return _where(source) == _where(target)
    if isinstance(source, Path) and isinstance(target, Path):
        return source.resolve() == target.resolve()
    return False


def _where(location: PostgresLocation) -> tuple[object, ...]:
    parts = urlsplit(location.conninfo)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname, port, parts.path, location.schema)


def _place(db: Database, location: StateLocation) -> tuple[object, ...]:
    """Where a state really is, however it was named: a file's device and inode; for
    PostgreSQL, the server (its start time), the database and the schema, by their ids
    (``localhost`` and ``127.0.0.1``, a default port given or not, are one place)."""
    if isinstance(location, Path):
        info = location.stat()
        return ("file", info.st_dev, info.st_ino)
    row = db.rows(
        "SELECT pg_postmaster_start_time()::text,"
        " (SELECT oid FROM pg_database WHERE datname = current_database())::bigint,"
        " current_schema()::regnamespace::oid::bigint"
    )[0]
    return ("postgresql", row[0], row[1], row[2])


def _exists(location: StateLocation) -> bool:
    return location.exists()


def _not_created(reader: SqlState) -> bool:
    """A PostgreSQL state read before its schema exists reads as an empty state in
    memory, which is not a PostgreSQL database (see ``runner.state.postgres``)."""
    from runner.state.sqlite import SqliteDatabase

    return isinstance(reader.database, SqliteDatabase)


def read_contents(db: Database) -> Contents:
    """Every row of every table of the journal, as ``db`` holds them."""
    tables = []
    for table in TABLES:
        rows = db.rows(
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {', '.join(table.key)}"
        )
        values = [tuple(row[i] for i in range(len(table.columns))) for row in rows]
        canonical = sorted(
            (_canonical_row(table, row) for row in values), key=lambda row: _sort_key(table, row)
        )
        tables.append(TableCopy(table, tuple(values), _digest(table, canonical)))
    return Contents(tuple(tables))


def _canonical_row(table: Table, row: Sequence[Any]) -> list[Any]:
    """A row as both backends agree on it: a time as UTC ISO text, a number as a number,
    everything else as text (or null)."""
    out: list[Any] = []
    for column, value in zip(table.columns, row, strict=True):
        if value is None:
            out.append(None)
        elif column in table.times:
            out.append(to_text(from_text(value)))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(value)
        else:
            out.append(str(value))
    return out


def _sort_key(table: Table, row: Sequence[Any]) -> tuple[Any, ...]:
    """The key, compared byte by byte whatever the database's collation."""
    positions = [table.columns.index(column) for column in table.key]
    return tuple(row[i].encode() if isinstance(row[i], str) else row[i] for i in positions)


def _digest(table: Table, rows: Iterable[Sequence[Any]]) -> str:
    digest = hashlib.sha256(json.dumps([table.name, *table.columns]).encode())
    for row in rows:
        digest.update(b"\n" + json.dumps(row, ensure_ascii=False).encode())
    return digest.hexdigest()


def _write(
    writer: SqlState, contents: Contents, *, force: bool, source_place: tuple[object, ...]
) -> Contents | None:
    """Write ``contents`` into the target in one transaction, verified before it commits;
    returns what the target held before, if anything."""
    with writer.replacing("copy the state into") as db:
        if _place(db, writer.path) == source_place:
            raise RunnerError(
                f"{writer.path} is the state the copy reads from, named another way",
                hint="copy to another file, database or schema (?schema=NAME)",
            )
        # No apply takes a lock or records anything until this transaction ends.
        held = read_contents(db)
        lock_rows = int(db.rows("SELECT count(*) FROM locks")[0][0])
        replaced: Contents | None = None
        if not held.empty or lock_rows:
            _refuse_to_replace(writer, held, lock_rows, force=force)
            for table in reversed(TABLES):
                db.execute(f"DELETE FROM {table.name}")
            db.execute("DELETE FROM locks")
            replaced = held
        for copy in contents.tables:
            target_rows = [_for_target(db, copy.table, row) for row in copy.rows]
            if target_rows:
                db.insert_keeping_ids(copy.table.name, copy.table.columns, target_rows)
        written = read_contents(db)
        _verify(writer, contents, written)
    return replaced


def _for_target(db: Database, table: Table, row: Sequence[Any]) -> tuple[Any, ...]:
    """A row read from the source, in the target's types (a time as the target keeps it)."""
    return tuple(
        db.moment(from_text(value)) if column in table.times and value is not None else value
        for column, value in zip(table.columns, row, strict=True)
    )


def _refuse_to_replace(writer: SqlState, held: Contents, lock_rows: int, *, force: bool) -> None:
    """Refuse a target that holds anything, unless ``force``; and, even then, one where
    an apply holds a lock (its history would be replaced under it)."""
    live = [lock for lock in writer.list_locks() if not lock.stale]
    if live:
        holders = "; ".join(
            f"{lock.environment} by {lock.holder} on {lock.host} (pid {lock.pid}) since "
            f"{lock.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
            for lock in live
        )
        raise RunnerError(
            f"the target state at {writer.path} has locks held by applies running "
            f"against it ({holders}); a copy would replace the history under them",
            hint="wait for those applies to end (or, if one died, `runner unlock ENV` "
            "with --state pointing at the target), then copy again",
        )
    if force:
        return
    locks = f", {lock_rows} lock{'' if lock_rows == 1 else 's'} left behind" if lock_rows else ""
    raise RunnerError(
        f"the target state at {writer.path} is not empty: it holds {held.describe()}"
        f"{locks}; nothing was copied",
        hint="copy into a new file or an empty database or schema (?schema=NAME), or "
        "run again with --force to replace everything the target holds with the copy",
    )


def _verify(writer: SqlState, contents: Contents, written: Contents) -> None:
    """The copy, read back from the target, must be the source row for row."""
    if written.digest == contents.digest:
        return
    differing = [
        f"{mine.table.name} ({len(mine.rows)} rows copied, {len(theirs.rows)} read back)"
        for mine, theirs in zip(contents.tables, written.tables, strict=True)
        if mine.digest != theirs.digest
    ]
    raise RunnerError(
        f"the copy into {writer.path} did not read back as the source: "
        f"{', '.join(differing)} differ; it was rolled back, and the target is as it was",
        hint="look for triggers, rules or defaults changed by hand on the target's tables, "
        "then copy again",
    )
