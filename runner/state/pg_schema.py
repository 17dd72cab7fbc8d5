"""The state's schema on PostgreSQL: the same tables as :mod:`runner.state.schema`, in
PostgreSQL's types, all in one schema of their own (default ``runner``; nothing is
created in ``public``).

The version is the ``schema_version`` row of ``meta``. Migrations are append-only (never
edit a released one), numbered like the SQLite ones, and run in one transaction under an
advisory lock, so that runners starting at once on several machines
migrate one after the other (the second finds nothing left to do). A role that may
only read (plan, status) never migrates: it reads a state at the latest version, or an
empty one if the schema does not exist yet.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runner.errors import RunnerError
from runner.state.location import PostgresLocation
from runner.state.schema import Migration

# Names compared and sorted byte by byte, as SQLite does, whatever the database's locale.
_NAME = 'text COLLATE "C" NOT NULL'

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "applies, the run journal, environment locks and the serial",
        (
            # key/value pairs; 'serial' counts journal writes, 'schema_version' is ours
            "CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('serial', 0), ('schema_version', 0)",
            """CREATE TABLE applies (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                who text NOT NULL,
                host text NOT NULL,
                git_commit text,
                environments text NOT NULL,
                argv text NOT NULL,
                plan_hash text,
                plan text,
                started_at timestamptz NOT NULL,
                finished_at timestamptz,
                outcome text,
                resumed integer NOT NULL DEFAULT 0
            )""",
            f"""CREATE TABLE apply_environments (
                apply_id bigint NOT NULL REFERENCES applies (id),
                environment {_NAME},
                PRIMARY KEY (apply_id, environment)
            )""",
            "CREATE INDEX apply_environments_by_env ON apply_environments (environment, apply_id)",
            f"""CREATE TABLE runs (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                apply_id bigint NOT NULL REFERENCES applies (id),
                environment {_NAME},
                batch text NOT NULL,
                name {_NAME},
                request text NOT NULL,
                request_hash text NOT NULL,
                status text NOT NULL,
                run_counter bigint,
                run_link text,
                intent_at timestamptz NOT NULL,
                fired_at timestamptz,
                started_at timestamptz,
                ended_at timestamptz,
                failed_nodes text NOT NULL DEFAULT '[]',
                message text,
                changed_serial bigint NOT NULL
            )""",
            "CREATE INDEX runs_by_identity ON runs (environment, name, id)",
            "CREATE INDEX runs_by_apply ON runs (apply_id, id)",
            "CREATE INDEX runs_by_status ON runs (status)",
            # The holder of each environment's lock; the lock itself is an advisory lock.
            f"""CREATE TABLE locks (
                environment {_NAME} PRIMARY KEY,
                token text NOT NULL,
                holder text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                acquired_at timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL,
                ttl_seconds double precision NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "a serial per environment, so that applies of different environments never wait",
        (
            # As in SQLite's version 2: each environment's serial goes on from the
            # highest its runs were given by the one serial of version 1.
            f"""CREATE TABLE serials (
                environment {_NAME} PRIMARY KEY,
                value bigint NOT NULL
            )""",
            "INSERT INTO serials (environment, value)"
            " SELECT environment, max(changed_serial) FROM runs GROUP BY environment",
            # meta's 'serial' row stays, unused: a runner of version 1 still running
            # (started before this migration) goes on writing it, and does not fail.
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
# From this version on, each environment has a serial of its own: a runner of an older
# version would go on moving the one serial, which plans no longer read.
SERIALS_PER_ENVIRONMENT = 2


def schema_version(connection: psycopg.Connection[Any], location: PostgresLocation) -> int:
    """The version of the state's schema (0: not created yet), after checking that the
    schema is a runner state and not newer than this runner knows."""
    if not _has_meta(connection, location):
        if not _has_tables(connection, location):
            return 0
        # Another runner may have created the state between the two looks (its tables
        # all appear at once, when it commits): look for ours once more.
        if not _has_meta(connection, location):
            raise _not_ours(location)
    row = connection.execute(
        sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'").format(
            sql.Identifier(location.schema)
        )
    ).fetchone()
    if row is None:
        raise _not_ours(location)
    version = int(row[0])
    if version > LATEST_VERSION:
        raise RunnerError(
            f"the state at {location} (schema {location.schema}) was written by a newer "
            f"runner (schema version {version}; this runner knows up to {LATEST_VERSION}); "
            "upgrade runner",
            hint="every runner sharing a state must be at least as new as the newest one used",
        )
    return version


def _has_meta(connection: psycopg.Connection[Any], location: PostgresLocation) -> bool:
    meta = f'"{location.schema}".meta'
    found = connection.execute("SELECT to_regclass(%s) IS NOT NULL", [meta]).fetchone()
    return found is not None and bool(found[0])


def _has_tables(connection: psycopg.Connection[Any], location: PostgresLocation) -> bool:
    """Whether the schema holds anything (it is someone else's if it is not ours)."""
    row = connection.execute(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = %s",
        [location.schema],
    ).fetchone()
    return row is not None and row[0] > 0


def _not_ours(location: PostgresLocation) -> RunnerError:
    return RunnerError(
        f"the schema {location.schema} at {location} holds tables that are not a runner state",
        hint="choose another schema with schema= in the state URL (for example "
        "?schema=runner_state)",
    )


def migrate(connection: psycopg.Connection[Any], location: PostgresLocation) -> None:
    """Bring the schema to :data:`LATEST_VERSION`; nothing is written when it is there."""
    if schema_version(connection, location) == LATEST_VERSION:
        return
    key = [f"runner migrate {location.schema}"]
    # A session lock taken before the migration's transaction begins, so that the
    # transaction sees what the previous holder committed (a transaction-level lock
    # taken inside it would leave its view of the catalog from before the wait).
    connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", key)
    try:
        with connection.transaction():
            current = schema_version(connection, location)  # another may have migrated
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(location.schema))
            )
            connection.execute(
                sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(location.schema))
            )
            for migration in MIGRATIONS:
                if migration.version > current:
                    for statement in migration.statements:
                        connection.execute(statement.encode())
                    connection.execute(
                        "UPDATE meta SET value = %s WHERE key = 'schema_version'",
                        [migration.version],
                    )
    finally:
        if not connection.closed:
            connection.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", key)
