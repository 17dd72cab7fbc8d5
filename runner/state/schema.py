"""The SQLite state's schema: an ordered list of migrations, applied in one transaction on open.

Plain SQL that SQLite 3.24 understands (no STRICT tables, no RETURNING): the
sqlite3 module may be linked against an older system library.

The schema version is ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file
as ours, so that ``--state`` pointed at some other SQLite database is refused instead of
being written into. Migrations are append-only: never edit a released one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError

APPLICATION_ID = 0x52554E52  # "RUNR"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "applies, the run journal, environment locks and the serial",
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            # key/value pairs; 'serial' counts journal writes
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('serial', 0)",
            """CREATE TABLE applies (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                who TEXT NOT NULL,
                host TEXT NOT NULL,
                git_commit TEXT,
                environments TEXT NOT NULL,
                argv TEXT NOT NULL,
                plan_hash TEXT,
                plan TEXT,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                outcome TEXT,
                resumed INTEGER NOT NULL DEFAULT 0
            )""",
            # the environments of each apply, for "last apply of ENV"
            """CREATE TABLE apply_environments (
                apply_id INTEGER NOT NULL REFERENCES applies (id),
                environment TEXT NOT NULL,
                PRIMARY KEY (apply_id, environment)
            )""",
            "CREATE INDEX apply_environments_by_env ON apply_environments (environment, apply_id)",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                apply_id INTEGER NOT NULL REFERENCES applies (id),
                environment TEXT NOT NULL,
                batch TEXT NOT NULL,
                name TEXT NOT NULL,
                request TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status TEXT NOT NULL,
                run_counter INTEGER,
                run_link TEXT,
                intent_at TEXT NOT NULL,
                fired_at TEXT,
                started_at TEXT,
                ended_at TEXT,
                failed_nodes TEXT NOT NULL DEFAULT '[]',
                message TEXT,
                changed_serial INTEGER NOT NULL
            )""",
            "CREATE INDEX runs_by_identity ON runs (environment, name, id)",
            "CREATE INDEX runs_by_apply ON runs (apply_id, id)",
            "CREATE INDEX runs_by_status ON runs (status)",
            """CREATE TABLE locks (
                environment TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                holder TEXT NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                acquired_at TEXT NOT NULL,
                heartbeat_at TEXT NOT NULL,
                ttl_seconds REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "a serial per environment, so that applies of different environments never wait",
        (
            # Each environment's serial goes on from the highest its runs were given by
            # the one serial of version 1, so that it only ever grows.
            """CREATE TABLE serials (
                environment TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            )""",
            "INSERT INTO serials (environment, value)"
            " SELECT environment, max(changed_serial) FROM runs GROUP BY environment",
            # meta's 'serial' row stays, unused: a runner of version 1 still running
            # (started before this migration) goes on writing it, and does not fail.
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(connection: sqlite3.Connection) -> int:
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def check_ours(connection: sqlite3.Connection, path: Path) -> int:
    """The schema version of the state at ``path``, after checking it is ours and not
    newer than this runner knows."""
    if connection.in_transaction:
        return _check_ours(connection, path)
    # One read transaction, so that all three reads see the same version of the file
    # even while another process is creating it.
    connection.execute("BEGIN")
    try:
        return _check_ours(connection, path)
    finally:
        connection.execute("COMMIT")


def _check_ours(connection: sqlite3.Connection, path: Path) -> int:
    application_id: int = connection.execute("PRAGMA application_id").fetchone()[0]
    version = schema_version(connection)
    has_tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    if application_id != APPLICATION_ID and (application_id != 0 or has_tables):
        raise RunnerError(
            f"{path} is a SQLite database, but not a runner state",
            hint="point --state (or RUNNER_STATE) at a runner state file, or at a new path",
        )
    if version > LATEST_VERSION:
        raise RunnerError(
            f"the state at {path} was written by a newer runner (schema version {version}; "
            f"this runner knows up to {LATEST_VERSION}); upgrade runner",
            hint="every runner sharing a state must be at least as new as the newest one used",
        )
    return version


def migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`LATEST_VERSION`, all pending steps in one transaction.

    The version is read again inside the write transaction: another process may have
    migrated the file between our first look and taking the write lock.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        current = check_ours(connection, path)
        for migration in MIGRATIONS:
            if migration.version > current:
                for statement in migration.statements:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {migration.version}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
