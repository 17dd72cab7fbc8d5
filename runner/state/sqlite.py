"""The SQLite backend (the default, ``.runner/state.db``): one machine's state.

The journal is :class:`~runner.state.store.SqlState`'s; here are the connection (see
:mod:`runner.state.connect` for durability and sharing between processes), the dialect
(``BEGIN IMMEDIATE``, ``lastrowid``, times as text) and the locks.

A lock is a row with a heartbeat: it is stale, and taken over, when its heartbeat is
older than its ttl or when its holder ran on this host and its pid is gone (see
:mod:`runner.state.locks`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.state.connect import connect_readonly, connect_readwrite, sqlite_errors
from runner.state.location import StateLocation
from runner.state.locks import EnvironmentLocked, LockLostError, stale_reason
from runner.state.records import LockInfo, LockToken
from runner.state.rows import Row, from_text, to_text
from runner.state.sanitize import scrubbed_text
from runner.state.store import Clock, Session, SqlState, bump_serials_sql


class SqliteDatabase:
    """A SQLite connection in the shape :class:`~runner.state.store.Database` asks for."""

    def __init__(self, connection: sqlite3.Connection, path: StateLocation) -> None:
        self.connection = connection
        self._path = path

    @property
    def location(self) -> StateLocation:
        return self._path

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.connection.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.execute(sql, params).rowcount

    def execute_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self.connection.executemany(sql, params)

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        # No RETURNING: the sqlite3 module may be linked against a library older than 3.35.
        row_id = self.connection.execute(sql, params).lastrowid
        assert row_id is not None  # set by every INSERT
        return row_id

    def insert_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        return [self.insert(sql, row) for row in rows]

    def update_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        return [self.execute(sql, row) == 1 for row in rows]

    def bump_serials(self, counts: Mapping[str, int]) -> dict[str, int]:
        # No RETURNING (SQLite before 3.35): read them back, in this process (no round trip).
        self.connection.execute(
            bump_serials_sql(len(counts)), [value for pair in counts.items() for value in pair]
        )
        marks = ",".join("?" * len(counts))
        rows = self.connection.execute(
            f"SELECT environment, value FROM serials WHERE environment IN ({marks})", list(counts)
        ).fetchall()
        return {str(row[0]): int(row[1]) for row in rows}

    def insert_keeping_ids(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        # An id given is kept, and AUTOINCREMENT's counter moves past it.
        marks = ", ".join("?" * len(columns))
        self.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        # A deferred transaction reads one version of the file, whatever commits meanwhile.
        self.connection.execute("BEGIN")
        try:
            yield
        finally:
            if self.connection.in_transaction:
                self.connection.execute("COMMIT")

    @contextmanager
    def transaction(self, *, alone: bool = False) -> Iterator[None]:
        # Every write transaction is alone: it holds SQLite's one write lock, which
        # taking an environment's lock needs too.
        # IMMEDIATE: take the write lock now, not at the first write, so that two
        # processes never both read and then find they cannot write.
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.connection.execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise

    def errors(self, doing: str) -> AbstractContextManager[None]:
        return sqlite_errors(self._path, doing)

    def moment(self, at: datetime) -> str:
        return to_text(at)

    def close(self) -> None:
        self.connection.close()


class SqliteLocks:
    """Locks as rows with a heartbeat and a ttl, in the state file."""

    def __init__(self, session: Session, *, hostname: str, is_alive: Callable[[int], bool]) -> None:
        self._session = session
        self._hostname = hostname
        self._is_alive = is_alive

    def acquire_lock(
        self,
        environment: str,
        *,
        holder: str,
        host: str,
        pid: int,
        ttl_seconds: float,
        now: datetime | None = None,
    ) -> LockToken:
        at = self._session.now(now)
        with self._session.transaction("take a lock") as db:
            rows = db.rows("SELECT * FROM locks WHERE environment = ?", (environment,))
            previous = self._lock_info(rows[0], at) if rows else None
            if previous is not None:
                if not previous.stale:
                    raise EnvironmentLocked(previous)
                db.execute(
                    "DELETE FROM locks WHERE environment = ? AND token = ?",
                    (environment, rows[0]["token"]),
                )
            token = LockToken(
                environment=environment,
                token=uuid.uuid4().hex,
                holder=holder,
                host=host,
                pid=pid,
                acquired_at=at,
                ttl_seconds=ttl_seconds,
                took_over=previous,
            )
            db.execute(
                "INSERT INTO locks (environment, token, holder, host, pid, acquired_at,"
                " heartbeat_at, ttl_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    environment,
                    token.token,
                    scrubbed_text(holder, "holder"),
                    scrubbed_text(host, "host"),
                    pid,
                    to_text(at),
                    to_text(at),
                    float(ttl_seconds),
                ),
            )
        return token

    def heartbeat(self, token: LockToken) -> None:
        """Renew the heartbeat; :class:`LockLostError` if the lock is no longer ours
        (taken over as stale, or forced open)."""
        at = self._session.now()
        with self._session.transaction("renew a lock") as db:
            changed = db.execute(
                "UPDATE locks SET heartbeat_at = ? WHERE environment = ? AND token = ?",
                (to_text(at), token.environment, token.token),
            )
            if changed == 1:
                return
            rows = db.rows("SELECT * FROM locks WHERE environment = ?", (token.environment,))
        raise LockLostError(token, self._lock_info(rows[0], at) if rows else None)

    def release_lock(self, token: LockToken) -> bool:
        with self._session.transaction("release a lock") as db:
            return (
                db.execute(
                    "DELETE FROM locks WHERE environment = ? AND token = ?",
                    (token.environment, token.token),
                )
                == 1
            )

    def force_unlock(self, environment: str) -> LockInfo | None:
        at = self._session.now()
        with self._session.transaction("remove a lock") as db:
            rows = db.rows("SELECT * FROM locks WHERE environment = ?", (environment,))
            if not rows:
                return None
            db.execute("DELETE FROM locks WHERE environment = ?", (environment,))
            return self._lock_info(rows[0], at)

    def list_locks(self) -> list[LockInfo]:
        at = self._session.now()
        rows = self._session.rows("SELECT * FROM locks ORDER BY environment")
        return [self._lock_info(row, at) for row in rows]

    @property
    def poll_seconds(self) -> float:
        """How often a waiter tries again: a lock is freed by its holder's release, or
        after its ttl; once a second is often enough for either."""
        return 1.0

    def close(self) -> None:
        """Nothing beside the session: a lock is a row in the state file."""

    def _lock_info(self, row: Row, now: datetime) -> LockInfo:
        heartbeat_at = from_text(row["heartbeat_at"])
        return LockInfo(
            environment=row["environment"],
            holder=row["holder"],
            host=row["host"],
            pid=row["pid"],
            acquired_at=from_text(row["acquired_at"]),
            heartbeat_at=heartbeat_at,
            ttl_seconds=row["ttl_seconds"],
            stale_reason=stale_reason(
                host=row["host"],
                pid=row["pid"],
                heartbeat_at=heartbeat_at,
                ttl_seconds=row["ttl_seconds"],
                now=now,
                this_host=self._hostname,
                is_alive=self._is_alive,
            ),
        )


def open_sqlite_state(
    path: Path,
    *,
    readonly: bool,
    clock: Clock,
    hostname: str,
    is_alive: Callable[[int], bool],
) -> SqlState:
    """Open (creating, migrating) the SQLite state at ``path``.

    Read-only, a missing file is not created: the state is empty (plan on a fresh
    checkout). Read-only, a file with an older schema is migrated in a private
    in-memory copy, so the file itself is never written.
    """
    with sqlite_errors(path, "open"):
        connection = connect_readonly(path) if readonly else connect_readwrite(path)
    session = Session(SqliteDatabase(connection, path), readonly=readonly, clock=clock)
    return SqlState(session, SqliteLocks(session, hostname=hostname, is_alive=is_alive))
