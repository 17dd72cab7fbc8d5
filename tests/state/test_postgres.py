"""The state on PostgreSQL: its URL, its own schema, read-only roles, locks that die with
their holder, a database that goes away, and a password that never shows."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.errors import RunnerError
from runner.secrets import holds_secret
from runner.state import (
    EnvironmentLocked,
    LockToken,
    PostgresLocation,
    SqlState,
    open_state,
    pg_schema,
    state_path,
)
from runner.state.postgres import _refuse_pooled_session, connect
from tests.pg_server import PASSWORD, PgServer

from .conftest import THIS_HOST, FakeClock, first_schema_only
from .processes import finish, read_line, spawn, tell


@pytest.fixture
def backend() -> str:
    return "postgres"


def _begin(store: SqlState, environment: str = "prod") -> int:
    return store.begin_apply(
        who="alice", host="build-7", git_commit=None, environments=[environment], argv=[]
    )


def _table_schemas(pg_server: PgServer, url: str) -> set[tuple[str, str]]:
    database = url.rsplit("/", 1)[1]
    with pg_server.admin(database) as admin:
        rows = admin.execute(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {(row[0], row[1]) for row in rows}


# -- the URL ------------------------------------------------------------------------------


def test_a_postgresql_url_is_a_postgres_state_shown_without_its_password() -> None:
    given = "postgresql://ci:s3cret-Pa55word-xyz@db.example.com:5433/runs?sslmode=require"
    location = state_path(given)

    assert isinstance(location, PostgresLocation)
    assert str(location) == "postgresql://ci@db.example.com:5433/runs"
    assert location.schema == "runner"
    assert "sslmode=require" in location.conninfo  # libpq's own settings go through
    assert "s3cret" not in repr(location)


def test_postgres_scheme_and_schema_parameter_are_understood() -> None:
    location = state_path(None, {"RUNNER_STATE": "postgres://ci@db/runs?schema=team_a"})

    assert isinstance(location, PostgresLocation)
    assert location.schema == "team_a"
    assert "schema" not in location.conninfo  # runner's, not libpq's


def test_the_rest_of_the_query_reaches_libpq_as_written_and_a_query_password_is_hidden() -> None:
    """libpq decodes %XX in a URL, not + (which stays a +): options= with a %20 must not
    become a +, and ``password=a+b`` is the password ``a+b`` to hide."""
    given = (
        "postgresql://ci@db/runs?options=-c%20lock_timeout%3D2000&schema=team_a"
        "&password=Pa55+word%2Bxyz&sslmode=require&application_name=50%zz&keepalives"
    )
    location = state_path(given)

    assert isinstance(location, PostgresLocation)
    assert location.conninfo.endswith(
        "?options=-c%20lock_timeout%3D2000&password=Pa55%2Bword%2Bxyz&sslmode=require"
        "&application_name=50%25zz&keepalives="  # a stray % as libpq can read it
    )
    assert holds_secret("libpq said: Pa55+word+xyz")  # as libpq reads it


def test_a_schema_that_is_not_a_plain_name_is_refused() -> None:
    with pytest.raises(RunnerError, match="not a plain lowercase name"):
        state_path("postgresql://ci@db/runs?schema=Robert%27;drop")


def test_without_the_driver_a_url_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "runner.state.postgres")

    with pytest.raises(RunnerError) as caught:
        open_state(pg_url)
    assert "pip install 'runner[postgres]'" in str(caught.value)
    assert PASSWORD not in str(caught.value)


# -- the schema ---------------------------------------------------------------------------


def test_everything_is_in_the_runner_schema_and_nothing_in_public(
    store: SqlState, pg_server: PgServer, pg_url: str
) -> None:
    _begin(store)

    tables = _table_schemas(pg_server, pg_url)
    assert {schema for schema, _ in tables} == {"runner"}
    assert {"applies", "runs", "locks", "meta", "apply_environments"} <= {t for _, t in tables}


def test_two_schemas_in_one_database_are_two_independent_states(
    pg_url: str, clock: FakeClock
) -> None:
    with open_state(pg_url + "?schema=team_a", clock=clock) as a:
        _begin(a)
        _begin(a)
    with open_state(pg_url + "?schema=team_b", clock=clock) as b:
        assert b.last_apply() is None


def test_a_state_migrated_by_a_newer_runner_is_refused(
    store: SqlState, pg_server: PgServer, pg_url: str
) -> None:
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as admin:
        admin.execute(
            "UPDATE runner.meta SET value = %s WHERE key = 'schema_version'",
            [pg_schema.LATEST_VERSION + 1],
        )

    for readonly in (False, True):
        with pytest.raises(RunnerError, match="upgrade runner"):
            open_state(pg_url, readonly=readonly)


def test_a_schema_holding_other_tables_is_refused_untouched(
    pg_server: PgServer, pg_url: str
) -> None:
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as admin:
        admin.execute("CREATE SCHEMA runner")
        admin.execute("CREATE TABLE runner.invoices (id int)")

    with pytest.raises(RunnerError, match="not a runner state"):
        open_state(pg_url)
    assert _table_schemas(pg_server, pg_url) == {("runner", "invoices")}


def test_runners_starting_at_once_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_state(pg_url).close()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_state(pg_url, readonly=True) as store:
        assert store.serial() == 0


def test_a_state_created_by_another_runner_between_two_looks_is_taken_as_ours(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten CI jobs opening a new state at once: one creates it while another, having
    found no state, looks whether the schema holds someone else's tables."""
    looked = pg_schema._has_tables
    created: list[bool] = []

    def meanwhile(connection: Any, location: PostgresLocation) -> bool:
        if not created:
            created.append(True)
            open_state(pg_url).close()  # another runner creates the state, and commits
        return looked(connection, location)

    monkeypatch.setattr(pg_schema, "_has_tables", meanwhile)

    with open_state(pg_url) as store:
        assert store.serial() == 0
    assert created == [True]


def test_reading_a_database_without_a_state_shows_an_empty_one_and_creates_nothing(
    pg_server: PgServer, pg_url: str
) -> None:
    with open_state(pg_url, readonly=True) as store:
        assert store.last_apply() is None
        assert store.list_locks() == []
        assert str(store.path) == str(state_path(pg_url))
    assert _table_schemas(pg_server, pg_url) == set()


def test_a_read_only_role_is_enough_for_plan_and_status(
    open_store: Callable[..., SqlState],
    pg_server: PgServer,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """...also after an upgrade of runner added a table (the grants were given when the
    state had only its first schema)."""
    with first_schema_only(monkeypatch):
        open_store().close()
    database = pg_url.rsplit("/", 1)[1]
    with pg_server.admin(database) as admin:
        admin.execute("DROP ROLE IF EXISTS reader")
        admin.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-password-123'")
        # The grants the README documents for a read-only role (runner applies as the
        # server's own user here).
        admin.execute("GRANT USAGE ON SCHEMA runner TO reader")
        admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA runner TO reader")
        admin.execute(
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA runner"
            " GRANT SELECT ON TABLES TO reader"
        )
    store = open_store()
    apply_id = _begin(store)
    store.record_intent(apply_id, "prod", "b", "orders", {}, "h")
    reader_url = pg_server.url(database, user="reader", password="reader-password-123")

    with open_state(reader_url, readonly=True) as reader:
        last = reader.last_apply()
        assert last is not None and last.apply_id == apply_id
        assert reader.serials(["prod"]) == {"prod": 1}
        assert reader.list_locks() == []
    with open_state(reader_url) as writer, pytest.raises(RunnerError) as caught:
        _begin(writer)
    assert "grant this role" in str(caught.value)


# -- concurrent writers -------------------------------------------------------------------


def test_serials_stay_unique_and_growing_under_concurrent_applies_of_different_environments(
    open_store: Callable[..., SqlState],
) -> None:
    stores = {env: open_store() for env in ("prod", "dev", "qa")}
    applies = {env: _begin(store, env) for env, store in stores.items()}
    seen: dict[str, list[int]] = {env: [] for env in stores}

    def fire(env: str) -> None:
        store = stores[env]
        for n in range(15):
            run_id = store.record_intent(applies[env], env, "b", f"r{n}", {"n": n}, "h")
            seen[env].append(store.serial([env]))
            store.record_fired(run_id, 1000 + n)

    threads = [threading.Thread(target=fire, args=(env,)) for env in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for serials in seen.values():
        assert serials == list(range(1, 30, 2))  # each write of the environment, in turn
    reader = open_store(readonly=True)
    # every write of a run moved its environment's serial, and none was lost
    assert reader.serials(stores) == {"prod": 30, "dev": 30, "qa": 30}
    assert reader.serial() == 90


def _impatient(url: str) -> str:
    """``url`` for a connection that gives up on a row lock after 2 s instead of waiting."""
    return url + "?options=-c%20lock_timeout%3D2000"


def test_a_write_in_one_environment_never_waits_for_another_environments_commit(
    open_store: Callable[..., SqlState], pg_url: str
) -> None:
    """Ten CI jobs applying ten environments on one state: none waits for another's
    journal commits. Here one apply's batch is open (its writes uncommitted) while
    another process records a run of another environment, on a connection that would
    fail after 2 s of waiting for a lock."""
    first, second = open_store(), open_store(_impatient(pg_url))
    prod, dev = _begin(first, "prod"), _begin(first, "dev")
    with first.batch():
        first.record_intent(prod, "prod", "b", "orders", {}, "h")
        run_id = second.record_intent(dev, "dev", "b", "orders", {}, "h")
        second.record_fired(run_id, 1)
    assert second.serials(["prod", "dev"]) == {"prod": 1, "dev": 2}


def test_a_serial_follows_the_order_of_the_commits_not_of_the_writes(
    open_store: Callable[..., SqlState], pg_server: PgServer, pg_url: str
) -> None:
    """...and within one environment, its serial moves in the order the writes are
    committed: a transaction that wrote first and committed last moves it last."""
    first, second = open_store(), open_store(_impatient(pg_url))
    prod = _begin(first, "prod")
    with first.batch():
        first.record_intent(prod, "prod", "b", "orders", {}, "h")
        second.record_intent(prod, "prod", "b", "customers", {}, "h")
        assert second.serials(["prod"]) == {"prod": 1}
    assert second.serials(["prod"]) == {"prod": 2}
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as admin:
        rows = admin.execute("SELECT name, changed_serial FROM runner.runs ORDER BY id").fetchall()
    assert rows == [("orders", 2), ("customers", 1)]


def test_a_state_is_not_moved_to_a_serial_per_environment_under_an_older_apply(
    open_store: Callable[..., SqlState], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apply of a runner that keeps one serial (schema version 1) holds a lock on a
    shared state: a newer runner starting on another machine refuses to migrate it, and
    does so once that apply has let go."""
    with first_schema_only(monkeypatch):
        older = open_store()
        token = older.acquire_lock("prod", holder="apply 7", host="ci-3", pid=99, ttl_seconds=60)

    with pytest.raises(RunnerError) as caught:
        open_store()
    assert "in use by an older runner ('prod' by apply 7 on ci-3 (pid 99))" in str(caught.value)

    older.release_lock(token)
    assert open_store().serials(["prod"]) == {"prod": 0}


# -- locks --------------------------------------------------------------------------------


def test_a_lock_whose_holder_dies_is_free_at_once_and_the_holder_is_named(
    open_store: Callable[..., SqlState], pg_url: str
) -> None:
    store = open_store()
    holder = spawn("lock", pg_url, "prod", "ci-job-1")
    try:
        assert read_line(holder) == "ready"
        tell(holder, "go")
        assert read_line(holder) == "won"
        with pytest.raises(EnvironmentLocked, match="ci-job-1"):
            store.acquire_lock("prod", holder="me", host=THIS_HOST, pid=1, ttl_seconds=600)
        assert [lock.holder for lock in store.list_locks()] == ["ci-job-1"]
        assert not store.list_locks()[0].stale
        holder.kill()  # SIGKILL: no release, no goodbye; its connection drops
        holder.wait(timeout=30)
    finally:
        finish(holder)

    token = _acquire_when_free(store)
    assert token.took_over is not None and token.took_over.holder == "ci-job-1"
    assert "session has ended" in (token.took_over.stale_reason or "")


def _acquire_when_free(store: SqlState) -> LockToken:
    """The lock, waited for as apply waits (the server notices a dead client at once,
    but asynchronously)."""
    import asyncio

    from runner.state import wait_for_lock_async

    return asyncio.run(
        wait_for_lock_async(
            store,
            "prod",
            holder="me",
            host=THIS_HOST,
            pid=os.getpid(),
            ttl_seconds=600,
            timeout=30,
            sleep=asyncio.sleep,
            poll=store.lock_poll_seconds,
        )
    )


def test_unlock_ends_the_session_of_a_live_holder_in_another_process(
    open_store: Callable[..., SqlState], pg_url: str
) -> None:
    holder = spawn("lock", pg_url, "prod", "hung-job")
    try:
        assert read_line(holder) == "ready"
        tell(holder, "go")
        assert read_line(holder) == "won"
        store = open_store()
        removed = store.force_unlock("prod")
        assert removed is not None and removed.holder == "hung-job" and not removed.stale
        token = store.acquire_lock("prod", holder="me", host=THIS_HOST, pid=1, ttl_seconds=600)
        assert token.took_over is None
    finally:
        finish(holder)


def test_a_lock_not_on_its_own_server_session_is_refused_as_pooled(pg_url: str) -> None:
    location = state_path(pg_url)
    assert isinstance(location, PostgresLocation)
    open_state(location).close()
    # What a pooler in transaction mode does: the lock is not on this session.
    with (
        connect(location, purpose="test") as elsewhere,
        pytest.raises(RunnerError, match="PgBouncer"),
    ):
        _refuse_pooled_session(elsewhere, "runner lock runner prod", location)


# -- the database going away, and the password --------------------------------------------


def test_a_database_that_goes_away_mid_apply_is_a_clear_error_and_comes_back(
    open_store: Callable[..., SqlState], pg_server: PgServer
) -> None:
    store = open_store()
    apply_id = _begin(store)
    pg_server.stop("immediate")
    try:
        with pytest.raises(RunnerError) as caught:
            store.record_intent(apply_id, "prod", "b", "orders", {"n": 1}, "h")
    finally:
        pg_server.start()
    message = str(caught.value)
    assert (
        "cannot record a run: the PostgreSQL state at postgresql://postgres@127.0.0.1:" in message
    )
    assert "runner apply --resume" in message
    assert PASSWORD not in message

    run_id = store.record_intent(apply_id, "prod", "b", "orders", {"n": 1}, "h")
    assert store.get_run(run_id) is not None


@pytest.mark.parametrize("where", ["url", "PGPASSWORD"])
def test_the_password_shows_in_no_error(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    canary = "canary-Pw-4f8e2b91c7"
    if where == "url":
        url = pg_server.url("postgres", password=canary)
    else:
        monkeypatch.setenv("PGPASSWORD", canary)
        url = f"postgresql://postgres@127.0.0.1:{pg_server.port}/postgres"

    with pytest.raises(RunnerError) as caught:  # the wrong password
        open_state(state_path(url))
    text = str(caught.value)
    assert "postgresql://postgres@127.0.0.1" in text
    assert canary not in text
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and canary in p.read_text()]


def test_the_journal_keeps_the_command_line_without_the_state_password() -> None:
    from runner.commands._options import _shown_argument

    url = f"postgresql://ci:{PASSWORD}@db:5432/ops?password={PASSWORD}"
    assert _shown_argument(url) == "postgresql://ci@db:5432/ops"
    assert _shown_argument(f"--state={url}") == "--state=postgresql://ci@db:5432/ops"
    assert _shown_argument("--state=.runner/state.db") == "--state=.runner/state.db"
