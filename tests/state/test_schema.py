"""Opening the state: creating it, migrating it, and refusing what it cannot handle."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.errors import RunnerError
from runner.state import SqlState, open_state, schema
from runner.state.schema import LATEST_VERSION, Migration
from runner.state.sqlite import SqliteDatabase


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _pragma(path: Path, name: str) -> object:
    with _raw(path) as db:
        value: object = db.execute(f"PRAGMA {name}").fetchone()[0]
    return value


def _begin(store: SqlState, environment: str = "prod") -> int:
    return store.begin_apply(
        who="alice", host="build-7", git_commit="abc123", environments=[environment], argv=[]
    )


def _applies(store: SqlState) -> list[int]:
    last = store.last_apply()
    return [last.apply_id] if last else []


def test_a_missing_state_is_created_with_the_latest_schema(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    store = open_store()
    assert state_file.exists()
    assert _pragma(state_file, "user_version") == LATEST_VERSION
    assert store.serial() == 0
    assert store.last_apply() is None


def test_the_state_uses_write_ahead_logging_and_full_sync(store: SqlState) -> None:
    database = store.database  # the pragmas are per connection: look at the store's own
    assert isinstance(database, SqliteDatabase)
    db = database.connection
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_reopening_keeps_everything_and_changes_nothing(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    first = open_store()
    apply_id = _begin(first)
    serial = first.serial()
    before = first.get_apply(apply_id)
    first.close()

    again = open_store()
    assert again.serial() == serial
    assert before is not None and before.who == "alice"
    assert again.get_apply(apply_id) == before
    again.close()
    assert _pragma(state_file, "user_version") == LATEST_VERSION


def _open_at_once(
    open_store: Callable[..., SqlState], path: Path, count: int
) -> tuple[list[int], list[BaseException]]:
    """Open ``path`` from ``count`` threads released together; their serials and errors."""
    barrier = threading.Barrier(count)
    serials: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            serials.append(open_store(path).serial())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return serials, errors


def test_connections_creating_the_state_at_once_all_succeed(
    open_store: Callable[..., SqlState], tmp_path: Path
) -> None:
    """Several applies starting together on a fresh checkout race to create the file."""
    for attempt in range(10):
        path = tmp_path / f"attempt-{attempt}" / "state.db"
        serials, errors = _open_at_once(open_store, path, 4)
        assert errors == []
        assert serials == [0, 0, 0, 0]
        assert _pragma(path, "journal_mode") == "wal"


def test_a_state_from_a_newer_runner_is_refused_with_a_clear_message(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    open_store().close()
    with _raw(state_file) as db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")

    for readonly in (False, True):
        with pytest.raises(RunnerError) as caught:
            open_store(readonly=readonly)
        message = str(caught.value)
        assert "newer runner" in message
        assert "upgrade" in message
        assert str(state_file) in message
    assert _pragma(state_file, "user_version") == LATEST_VERSION + 1


def test_another_applications_database_is_refused_untouched(
    open_store: Callable[..., SqlState], tmp_path: Path
) -> None:
    other = tmp_path / "inventory.db"
    with _raw(other) as db:
        db.execute("CREATE TABLE items (name TEXT)")

    with pytest.raises(RunnerError, match="not a runner state"):
        open_store(other)
    assert _pragma(other, "journal_mode") == "delete"
    assert _pragma(other, "user_version") == 0


def test_a_file_that_is_not_a_database_is_a_runner_error(
    open_store: Callable[..., SqlState], tmp_path: Path
) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("these are not the pages you are looking for\n" * 200)

    with pytest.raises(RunnerError) as caught:
        open_store(junk)
    assert str(junk) in str(caught.value)
    assert caught.value.hint is not None


def test_reading_a_missing_state_does_not_create_it(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    store = open_store(readonly=True)

    assert store.serial() == 0
    assert store.last_applied_runs() == {}
    assert store.interrupted_apply() is None
    assert store.list_locks() == []
    assert not state_file.exists()
    assert not state_file.parent.exists()


def test_a_read_only_state_refuses_writes(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    _begin(open_store())
    reader = open_store(readonly=True)

    with pytest.raises(RuntimeError, match="read-only"):
        _begin(reader)
    assert _applies(reader) == [1]


def test_a_read_only_state_sees_writes_made_after_it_opened(
    open_store: Callable[..., SqlState],
) -> None:
    writer = open_store()
    reader = open_store(readonly=True)
    _begin(writer)

    assert _applies(reader) == _applies(writer) == [1]


def test_an_older_schema_is_migrated_on_open(
    open_store: Callable[..., SqlState], state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _begin(open_store())
    _add_migration(monkeypatch)

    store = open_store()
    assert _pragma(state_file, "user_version") == LATEST_VERSION + 1
    assert _applies(store) == [1]
    with _raw(state_file) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0


def test_reading_an_older_schema_migrates_a_copy_and_leaves_the_file_alone(
    open_store: Callable[..., SqlState], state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _begin(open_store())
    _add_migration(monkeypatch)

    reader = open_store(readonly=True)
    assert _applies(reader) == [1]
    assert _pragma(state_file, "user_version") == LATEST_VERSION


def test_a_failing_migration_leaves_the_previous_schema(
    open_store: Callable[..., SqlState], state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _begin(open_store())
    broken = Migration(
        LATEST_VERSION + 1,
        "half done",
        ("CREATE TABLE notes (text TEXT)", "INSERT INTO no_such_table VALUES (1)"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "LATEST_VERSION", LATEST_VERSION + 1)

    with pytest.raises(RunnerError):
        open_store()
    assert _pragma(state_file, "user_version") == LATEST_VERSION
    with _raw(state_file) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "notes" not in tables


def _add_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Migration(LATEST_VERSION + 1, "notes", ("CREATE TABLE notes (text TEXT)",))
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, extra))
    monkeypatch.setattr(schema, "LATEST_VERSION", LATEST_VERSION + 1)


def test_open_state_accepts_a_string_path(tmp_path: Path) -> None:
    with open_state(str(tmp_path / "s.db")) as store:
        assert store.path == tmp_path / "s.db"
