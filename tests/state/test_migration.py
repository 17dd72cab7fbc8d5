"""A state written by the first schema (one serial for the whole state) opened by this
runner: each environment's serial goes on from where its runs were, on both backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest

from runner.state import SqlState
from runner.state.rows import APPLY_ROW_COLUMNS, RUN_ROW_COLUMNS

from .conftest import BOTH_BACKENDS, first_schema_only

pytestmark = BOTH_BACKENDS

# What the first schema's journal held: prod's runs last written at serials 3 and 7,
# dev's at 5, and the one serial at 9 (the apply's own writes moved it too).
_FIRST_SCHEMA_ROWS = (
    "INSERT INTO applies (who, host, environments, argv, started_at)"
    " VALUES ('alice', 'build-7', '[\"prod\", \"dev\"]', '[]', '2026-01-01T00:00:00+00:00')",
    "INSERT INTO apply_environments (apply_id, environment) VALUES (1, 'prod'), (1, 'dev')",
    *(
        "INSERT INTO runs (apply_id, environment, batch, name, request, request_hash, status,"
        f" intent_at, changed_serial) VALUES (1, '{env}', 'b', '{name}', '{{}}', 'h',"
        f" 'skipped', '2026-01-01T00:00:00+00:00', {serial})"
        for env, name, serial in (("prod", "a", 3), ("dev", "a", 5), ("prod", "b", 7))
    ),
    "UPDATE meta SET value = 9 WHERE key = 'serial'",
)


def _write_first_schema_state(
    open_store: Callable[..., SqlState], location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with first_schema_only(monkeypatch):
        open_store().close()
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as server:
            server.execute("SET search_path TO runner")
            for statement in _FIRST_SCHEMA_ROWS:
                server.execute(statement.encode())
        return
    file = sqlite3.connect(location, isolation_level=None)
    try:
        for statement in _FIRST_SCHEMA_ROWS:
            file.execute(statement)
    finally:
        file.close()


def test_each_environment_goes_on_from_the_highest_serial_its_runs_had(
    open_store: Callable[..., SqlState], state_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_first_schema_state(open_store, state_location, monkeypatch)

    store = open_store()

    assert store.serials(["prod", "dev", "qa"]) == {"prod": 7, "dev": 5, "qa": 0}
    run_id = store.record_intent(1, "prod", "b", "c", {}, "h")
    assert store.serials(["prod"]) == {"prod": 8}
    store.record_fired(run_id, 1)
    assert store.serials(["prod", "dev"]) == {"prod": 9, "dev": 5}
    assert [run.name for run in store.runs_of_apply(1)] == ["a", "a", "b", "c"]
    with store.reading() as db:  # kept for a runner of version 1 still writing it
        kept = db.rows("SELECT value FROM meta WHERE key = 'serial'")
    assert [row[0] for row in kept] == [9]


def test_the_journal_tables_have_the_columns_the_code_names(
    open_store: Callable[..., SqlState],
) -> None:
    """The column lists that the store reads and `state copy` copies are the schema's,
    in its order, on both backends."""
    store = open_store()
    connection = store.database.connection  # type: ignore[attr-defined]
    for table, columns in (("applies", APPLY_ROW_COLUMNS), ("runs", RUN_ROW_COLUMNS)):
        described = connection.execute(f"SELECT * FROM {table} WHERE 1 = 0").description
        assert tuple(column[0] for column in described) == columns
