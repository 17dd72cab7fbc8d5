"""The PostgreSQL backend: one state shared by a team's CI machines.

The journal is :class:`~runner.state.store.SqlState`'s, exactly as on SQLite; here are
the connection (psycopg 3, autocommit, a transaction per journal write or batch), the
dialect (``%s`` placeholders, ``RETURNING id``, ``timestamptz``) and the locks.

Every table is in the state's own schema (``search_path`` is set to it alone), so the
SQL of the journal is the same text on both backends.

Locks: an environment's lock is a session-level advisory lock
(``pg_try_advisory_lock``) held on a connection of its own, opened for that lock and
for nothing else. When the holder dies, its connection drops and PostgreSQL releases
the lock at once: there is no ttl to wait out. Beside it, a row in ``locks`` says who
holds it (user, host, pid, CI run) and since when, for the waiters and
``runner status``. A pooler in transaction mode (PgBouncer's ``pool_mode =
transaction``) would hand the lock's session to others between statements, so the lock
is checked to still be on our own server session when taken and at every heartbeat, and
refused if it is not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import RowMaker

from runner.errors import RunnerError, quoted
from runner.secrets import foreign_text
from runner.state import pg_schema
from runner.state.connect import empty_state_connection
from runner.state.location import PostgresLocation
from runner.state.locks import EnvironmentLocked, LockLostError
from runner.state.records import LockInfo, LockToken
from runner.state.rows import Row, from_text
from runner.state.sanitize import scrubbed_text
from runner.state.sqlite import SqliteDatabase, SqliteLocks
from runner.state.store import Clock, Session, SqlState, bump_serials_sql

# How often a waiter tries a held lock again: a holder that died frees it at once, so a
# short pause is what "taken over within a second" costs (one cheap query per pause).
LOCK_POLL_SECONDS = 0.2
# A state on a host that does not answer should fail in seconds, not in minutes.
CONNECT_TIMEOUT_SECONDS = 10
_SESSION_ENDED = "its database session has ended (the apply is gone)"


class PgRow:
    """A row read by column name or by position, as :class:`sqlite3.Row` is."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int, /) -> Any:
        return self._values[key if isinstance(key, int) else self._index[key]]


def _pg_rows(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    names = [column.name for column in cursor.description or ()]
    index = {name: position for position, name in enumerate(names)}
    return lambda values: PgRow(index, values)


def connect(location: PostgresLocation, *, purpose: str) -> psycopg.Connection[PgRow]:
    """A new autocommit connection whose ``search_path`` is the state's schema alone."""
    options: dict[str, Any] = {"application_name": f"runner ({purpose})"}
    if "connect_timeout" not in location.conninfo and "PGCONNECT_TIMEOUT" not in os.environ:
        options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    with postgres_errors(location, "connect"):
        connection = psycopg.connect(
            location.conninfo, autocommit=True, row_factory=_pg_rows, **options
        )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(location.schema)))
    return connection


@contextmanager
def postgres_errors(location: PostgresLocation, doing: str) -> Iterator[None]:
    """PostgreSQL errors a person can act on become a RunnerError naming the state (its
    URL without password); the server's text is shown only if it holds no secret."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as error:
        raise RunnerError(
            f"cannot {doing}: the PostgreSQL state at {location} said: {_text(error)}",
            hint=f"grant this role what it needs on schema {location.schema} (see the "
            "README, State for teams); plan and status only need to read",
        ) from None
    except psycopg.errors.ReadOnlySqlTransaction as error:
        raise RunnerError(
            f"cannot {doing}: the PostgreSQL state at {location} said: {_text(error)}",
            hint="this command records what it does: connect to the primary, with a role "
            "that may write",
        ) from None
    except psycopg.OperationalError as error:
        raise RunnerError(
            f"cannot {doing}: the PostgreSQL state at {location} said: {_text(error)}",
            hint="check that the database is up and reachable from here, and the URL in "
            "--state or RUNNER_STATE (libpq's PGHOST, PGUSER, PGPASSWORD, ~/.pgpass apply); "
            "an interrupted apply continues with `runner apply --resume`",
        ) from None
    except (psycopg.IntegrityError, psycopg.ProgrammingError):
        raise  # our bug, not the user's
    except psycopg.Error as error:
        raise RunnerError(
            f"cannot {doing}: the PostgreSQL state at {location} said: {_text(error)}",
            hint=f"check the database's health and this role's rights on schema {location.schema}",
        ) from None


def _text(error: psycopg.Error) -> str:
    return foreign_text(str(error), context="the database's message") or type(error).__name__


class PostgresDatabase:
    """A psycopg connection in the shape :class:`~runner.state.store.Database` asks for.

    A connection the server dropped is opened again at the next use, outside a
    transaction: a write that was under way when it dropped raised, and the caller
    decides (apply stops firing)."""

    def __init__(self, location: PostgresLocation, connection: psycopg.Connection[PgRow]) -> None:
        self._location = location
        self._connection = connection
        self._sql: dict[str, bytes] = {}

    @property
    def location(self) -> PostgresLocation:
        return self._location

    @property
    def connection(self) -> psycopg.Connection[PgRow]:
        if self._connection.closed:  # dropped by the server: a new one for what follows
            self._connection = connect(self._location, purpose="journal")
        return self._connection

    def _query(self, text: str) -> bytes:
        """``?`` placeholders as psycopg's ``%s`` (the journal's SQL has no ``%``)."""
        query = self._sql.get(text)
        if query is None:
            query = self._sql[text] = text.replace("?", "%s").encode()
        return query

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(self._query(sql), params)
        return list(cursor.fetchall()) if cursor.description else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.execute(self._query(sql), params).rowcount

    def execute_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(self._query(sql), params)

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        row = self.connection.execute(self._query(sql + " RETURNING id"), params).fetchone()
        assert row is not None  # RETURNING of a one-row INSERT
        return int(row[0])

    def insert_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        return [int(row[0]) for row in self._each(sql + " RETURNING id", rows)]

    def update_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        return [row is not None for row in self._each(sql + " RETURNING id", rows)]

    def _each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The first row each statement returned (``None`` for none): the statements go
        in one pipeline, so all of them cost one wait for the server, not one each."""
        if not rows:
            return []
        found = []
        with self.connection.cursor() as cursor:
            cursor.executemany(self._query(sql), rows, returning=True)
            while True:
                found.append(cursor.fetchone())
                if not cursor.nextset():
                    break
        return found

    def bump_serials(self, counts: Mapping[str, int]) -> dict[str, int]:
        rows = self.connection.execute(
            self._query(bump_serials_sql(len(counts)) + " RETURNING environment, value"),
            [value for pair in counts.items() for value in pair],
        ).fetchall()
        return {str(row[0]): int(row[1]) for row in rows}

    def insert_keeping_ids(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        keeps_id = "id" in columns
        statement = sql.SQL("INSERT INTO {} ({}) {}VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL("OVERRIDING SYSTEM VALUE " if keeps_id else ""),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        with self.connection.cursor() as cursor:
            cursor.executemany(statement, rows)
            if keeps_id:  # the identity goes on after the highest id copied
                cursor.execute(
                    sql.SQL(
                        # Only ever forward: a sequence is not rolled back with the
                        # copy, and the target's own ids may be higher.
                        "SELECT setval(pg_get_serial_sequence({0}, 'id'), greatest("
                        "coalesce(max(id), 0) + 1, nextval(pg_get_serial_sequence({0}, 'id'))"
                        "), false) FROM {1}"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self.connection.transaction():
            self.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    @contextmanager
    def transaction(self, *, alone: bool = False) -> Iterator[None]:
        with self.connection.transaction():
            # The writers' lock is every write transaction's first lock: shared by them
            # all, taken alone by a copy replacing the whole state, which then waits for
            # the writes under way and makes the next ones wait at their start, holding
            # nothing (taking the tables instead could deadlock: a transaction writes
            # runs, then the serials). Taking an environment's lock writes its holder
            # row on a connection of its own, so that table is locked too (a session
            # advisory lock alone would let an apply start on the history being replaced).
            mode = b"" if alone else b"_shared"
            self.connection.execute(
                b"SELECT pg_advisory_xact_lock" + mode + b"(hashtextextended(%s, 0))",
                [f"runner writers {self._location.schema}"],
            )
            if alone:
                self.connection.execute(b"LOCK TABLE locks IN EXCLUSIVE MODE")
            yield

    def errors(self, doing: str) -> AbstractContextManager[None]:
        return postgres_errors(self._location, doing)

    def moment(self, at: datetime) -> datetime:
        return at

    def close(self) -> None:
        self._connection.close()


class PostgresLocks:
    """Locks as advisory locks on dedicated connections, with a holder row each."""

    def __init__(self, session: Session, location: PostgresLocation) -> None:
        self._session = session
        self._location = location
        self._held: dict[str, psycopg.Connection[PgRow]] = {}  # by token

    def _key(self, environment: str) -> str:
        return f"runner lock {self._location.schema} {environment}"

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
        """Take the advisory lock and write the holder row in one transaction on the
        lock's own connection, under a transaction lock that racers wait for: whoever
        loses the race finds the winner's row committed, and can name it."""
        if self._session.readonly:
            raise RuntimeError(f"cannot take a lock: the state at {self._location} is read-only")
        at = self._session.now(now)
        key = self._key(environment)
        own = connect(self._location, purpose=f"lock of {environment}")
        try:
            with postgres_errors(self._location, "take a lock"), own.transaction():
                own.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key + " row"])
                taken = own.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key]
                ).fetchone()
                if taken is None or not taken[0]:
                    raise EnvironmentLocked(self._holder_of(own, environment, at))
                _refuse_pooled_session(own, key, self._location)
                token = LockToken(
                    environment=environment,
                    token=uuid.uuid4().hex,
                    holder=holder,
                    host=host,
                    pid=pid,
                    acquired_at=at,
                    ttl_seconds=ttl_seconds,
                )
                token = replace(token, took_over=_write_holder(own, token))
        except BaseException:
            own.close()  # closing the session releases the advisory lock
            raise
        self._held[token.token] = own
        return token

    def heartbeat(self, token: LockToken) -> None:
        """Check that the lock is still ours (its session alive, on our own server
        session, and not forced open), and say so in its row."""
        own = self._held.get(token.token)
        changed = own is not None and self._still_held(own, token.environment)
        if changed:  # and not forced open meanwhile: the row is still ours
            at = self._session.now()
            with self._session.transaction("renew a lock") as db:
                changed = (
                    db.execute(
                        "UPDATE locks SET heartbeat_at = ? WHERE environment = ? AND token = ?",
                        (at, token.environment, token.token),
                    )
                    == 1
                )
        if not changed:
            self._drop(token)
            raise LockLostError(token, self._current_holder(token.environment))

    def _still_held(self, own: psycopg.Connection[PgRow], environment: str) -> bool:
        try:
            _refuse_pooled_session(own, self._key(environment), self._location)
        except (psycopg.Error, RunnerError):
            return False
        return True

    def _current_holder(self, environment: str) -> LockInfo | None:
        try:
            return next(lock for lock in self.list_locks() if lock.environment == environment)
        except (StopIteration, RunnerError):
            return None

    def release_lock(self, token: LockToken) -> bool:
        own = self._held.get(token.token)
        if own is None:
            return False
        with self._session.transaction("release a lock") as db:
            mine = db.execute(
                "DELETE FROM locks WHERE environment = ? AND token = ?",
                (token.environment, token.token),
            )
        self._drop(token)
        return mine == 1

    def _drop(self, token: LockToken) -> None:
        own = self._held.pop(token.token, None)
        if own is not None:
            own.close()  # the advisory lock ends with its session

    def force_unlock(self, environment: str) -> LockInfo | None:
        """End the session holding ``environment``'s lock (which releases it; its apply
        finds out at its next heartbeat and stops) and remove the holder row."""
        sessions = self._sessions_holding([environment])
        with self._session.transaction("remove a lock") as db:
            rows = db.rows("SELECT * FROM locks WHERE environment = ?", (environment,))
            db.execute("DELETE FROM locks WHERE environment = ?", (environment,))
            for backend in sessions.get(environment, ()):
                # Waits (up to 5 s) for the session to end, so the lock is free on return.
                db.rows("SELECT pg_terminate_backend(?, 5000)", (backend,))
        if rows:
            return _lock_info(rows[0], None if sessions.get(environment) else _SESSION_ENDED)
        return None

    def list_locks(self) -> list[LockInfo]:
        """Every holder row, stale when no session holds the lock any more."""
        rows = self._session.rows("SELECT * FROM locks ORDER BY environment")
        held = self._sessions_holding([row["environment"] for row in rows])
        return [
            _lock_info(row, None if held.get(row["environment"]) else _SESSION_ENDED)
            for row in rows
        ]

    def _sessions_holding(self, environments: Sequence[str]) -> dict[str, list[int]]:
        """The server processes holding each environment's advisory lock."""
        if not environments:
            return {}
        keys = [self._key(environment) for environment in environments]
        rows = self._session.rows(
            "SELECT k.key, l.pid FROM unnest(?::text[]) AS k(key)"
            " JOIN pg_catalog.pg_locks l ON l.locktype = 'advisory' AND l.granted"
            " AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_catalog.pg_database"
            " WHERE datname = current_database())"
            " AND l.classid::text::bigint = (hashtextextended(k.key, 0) >> 32) & 4294967295"
            " AND l.objid::text::bigint = hashtextextended(k.key, 0) & 4294967295",
            (keys,),
        )
        by_key = dict(zip(keys, environments, strict=True))
        held: dict[str, list[int]] = {}
        for row in rows:
            held.setdefault(by_key[row[0]], []).append(int(row[1]))
        return held

    def _holder_of(
        self, own: psycopg.Connection[PgRow], environment: str, at: datetime
    ) -> LockInfo:
        """Who holds the lock we could not take, as its row says."""
        rows = own.execute("SELECT * FROM locks WHERE environment = %s", [environment]).fetchall()
        if rows:
            return _lock_info(rows[0], None)
        # Held by a session that wrote no row: not a runner of this version.
        return LockInfo(
            environment=environment,
            holder="another program (it recorded no holder)",
            host="unknown host",
            pid=0,
            acquired_at=at,
            heartbeat_at=at,
            ttl_seconds=0.0,
            stale_reason=None,
        )

    def close(self) -> None:
        for own in self._held.values():
            own.close()
        self._held.clear()

    @property
    def poll_seconds(self) -> float:
        return LOCK_POLL_SECONDS


def _refuse_pooled_session(
    own: psycopg.Connection[PgRow], key: str, location: PostgresLocation
) -> None:
    """Refuse a lock that is not held by the server session of ``own``: a pooler in
    transaction mode ran the statement that took it on another session."""
    row = own.execute(
        "SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid() AND objsubid = 1"
        " AND classid::text::bigint = (hashtextextended(%s, 0) >> 32) & 4294967295"
        " AND objid::text::bigint = hashtextextended(%s, 0) & 4294967295",
        [key, key],
    ).fetchone()
    if row is None or row[0] == 0:
        raise RunnerError(
            f"the lock taken in the state at {location} is not held by this connection's "
            "own server session: the URL goes through a connection pooler in transaction "
            "mode (such as PgBouncer with pool_mode = transaction), where a session lock "
            "holds nothing",
            hint="point --state (or RUNNER_STATE) at PostgreSQL itself, or at a pool in "
            "session mode",
        )


def _write_holder(own: psycopg.Connection[PgRow], token: LockToken) -> LockInfo | None:
    """Write our holder row; a row already there was left by a holder whose session
    ended (the lock was free): it is returned, as the lock taken over."""
    found = own.execute(
        "SELECT * FROM locks WHERE environment = %s", [token.environment]
    ).fetchall()
    previous = _lock_info(found[0], _SESSION_ENDED) if found else None
    own.execute("DELETE FROM locks WHERE environment = %s", [token.environment])
    own.execute(
        "INSERT INTO locks (environment, token, holder, host, pid, acquired_at,"
        " heartbeat_at, ttl_seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            token.environment,
            token.token,
            scrubbed_text(token.holder, "holder"),
            scrubbed_text(token.host, "host"),
            token.pid,
            token.acquired_at,
            token.acquired_at,
            float(token.ttl_seconds),
        ],
    )
    return previous


def _lock_info(row: Row, stale_reason: str | None) -> LockInfo:
    return LockInfo(
        environment=row["environment"],
        holder=row["holder"],
        host=row["host"],
        pid=row["pid"],
        acquired_at=from_text(row["acquired_at"]),
        heartbeat_at=from_text(row["heartbeat_at"]),
        ttl_seconds=row["ttl_seconds"],
        stale_reason=stale_reason,
    )


def open_postgres_state(location: PostgresLocation, *, readonly: bool, clock: Clock) -> SqlState:
    """Open the state at ``location``; writing, its schema is created or migrated first.

    Read-only, nothing is written (a read-only role is enough): a schema not created yet
    reads as an empty state, and one at an older version is refused.
    """
    connection = connect(location, purpose="journal")
    try:
        with postgres_errors(location, "open"):
            if readonly:
                return _open_readonly(location, connection, clock)
            version = pg_schema.schema_version(connection, location)
            if version != pg_schema.LATEST_VERSION:  # most opens: nothing to migrate
                if 0 < version < pg_schema.SERIALS_PER_ENVIRONMENT:
                    _refuse_to_migrate_under_older_applies(location, connection, clock)
                pg_schema.migrate(connection, location)
    except BaseException:
        connection.close()
        raise
    session = Session(PostgresDatabase(location, connection), readonly=False, clock=clock)
    return SqlState(session, PostgresLocks(session, location))


def _refuse_to_migrate_under_older_applies(
    location: PostgresLocation, connection: psycopg.Connection[PgRow], clock: Clock
) -> None:
    """Refuse to give each environment a serial of its own while a runner that keeps
    one for the whole state holds a lock: its apply would go on writing runs that no
    plan made by this runner sees move."""
    session = Session(PostgresDatabase(location, connection), readonly=True, clock=clock)
    live = [lock for lock in PostgresLocks(session, location).list_locks() if not lock.stale]
    if live:
        holders = "; ".join(
            f"{quoted(lock.environment)} by {lock.holder} on {lock.host} (pid {lock.pid})"
            for lock in live
        )
        raise RunnerError(
            f"the state at {location} is in use by an older runner ({holders}); this "
            "runner moves it to a new schema (a serial per environment), which that "
            "apply would not follow",
            hint="let those applies end (a holder that died holds nothing), then run again; "
            "every machine sharing the state should then use this runner or a newer one",
        )


def _open_readonly(
    location: PostgresLocation, connection: psycopg.Connection[PgRow], clock: Clock
) -> SqlState:
    version = pg_schema.schema_version(connection, location)
    if version == 0:
        connection.close()
        return _empty_state(location, clock)
    if version < pg_schema.LATEST_VERSION:
        raise RunnerError(
            f"the state at {location} has an older schema (version {version}) that a "
            "read-only command does not migrate",
            hint="run `runner apply` or `runner status --refresh` once with a role that may "
            "write, which migrates it",
        )
    connection.execute("SET default_transaction_read_only = on")
    session = Session(PostgresDatabase(location, connection), readonly=True, clock=clock)
    return SqlState(session, PostgresLocks(session, location))


def _empty_state(location: PostgresLocation, clock: Clock) -> SqlState:
    """An empty state, never saved: what reading a state not created yet shows."""
    database = SqliteDatabase(empty_state_connection(), location)
    session = Session(database, readonly=True, clock=clock)
    return SqlState(session, SqliteLocks(session, hostname="", is_alive=lambda pid: False))
