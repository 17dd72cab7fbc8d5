"""``runner state copy FROM TO``: a whole history, from SQLite to PostgreSQL and back,
read back the same from the target; a target that holds something is refused unless
``--force``; a copy that does not read back as written changes nothing; a password in
either URL never shows."""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.errors import RunnerError
from runner.state import RunStatus, SqlState, open_state
from runner.state.copy import copy_state
from tests.apply._support import wait_until
from tests.conftest import CliResult
from tests.pg_server import PASSWORD, PgServer

from .conftest import THIS_HOST, FakeClock

Locate = Callable[[str], str]
RunCli = Callable[..., CliResult]

PAIRS = [
    pytest.param("sqlite", "postgres", id="sqlite-to-postgres"),
    pytest.param("postgres", "sqlite", id="postgres-to-sqlite"),
    pytest.param("sqlite", "sqlite", id="sqlite-to-sqlite"),
    pytest.param("postgres", "postgres", id="postgres-to-postgres"),
]


@pytest.fixture
def locate(tmp_path: Path, request: pytest.FixtureRequest) -> Locate:
    """``locate("sqlite")``: a new state file's path; ``locate("postgres")``: the URL of
    a new database (its password is the server's canary)."""
    numbers = itertools.count(1)

    def new(kind: str) -> str:
        if kind == "postgres":
            server: PgServer = request.getfixturevalue("pg_server")
            return server.url(server.new_database())
        return str(tmp_path / f"state-{next(numbers)}.db")

    return new


def _open(location: str, clock: FakeClock, **options: Any) -> SqlState:
    return open_state(location, clock=clock, hostname=THIS_HOST, **options)


def _request(tag: str) -> dict[str, Any]:
    return {
        "runDetails": {"environmentID": "12", "includeNodesSelector": "{ location: STG }"},
        "parameters": {"tag": tag, "note": "quotes ' \" and ünïcödé ✓"},
        "userCredentials": {"snowflakeUsername": "loader", "snowflakePassword": "(secret)"},
    }


def _history(store: SqlState, clock: FakeClock) -> None:
    """Two applies over three environments, runs in every status, a plan document, and
    an interrupted apply to resume."""
    plan = {"formatVersion": 1, "environments": [{"name": "prod", "runs": ["load", "ünï"]}]}
    first = store.begin_apply(
        who="alice",
        host="build-7",
        git_commit="abc123",
        environments=["prod", "dev"],
        argv=["apply", "--auto-approve"],
        plan_hash="sha256:first",
        plan=plan,
    )
    for counter, (environment, name) in enumerate(
        [("prod", "load"), ("prod", "ünï"), ("dev", "load")], start=40
    ):
        clock.advance(1.25)
        run = store.record_intent(first, environment, "b1", name, _request(name), f"h-{name}")
        store.record_fired(run, counter, f"https://app.example/runs/{counter}")
        store.record_status(
            run,
            RunStatus.FAILED if name == "ünï" else RunStatus.COMPLETED,
            started_at=clock.now,
            ended_at=clock.now + timedelta(seconds=3, microseconds=17),
            failed_nodes=[{"name": "BAD", "error": "SQL 'x' \"y\""}] if name == "ünï" else None,
        )
    store.record_unfired(first, "dev", "b2", "later", _request("later"), "h-later")
    store.finish_apply(first, "failed")
    clock.advance(60)
    second = store.begin_apply(
        who="bob",
        host="ci-3",
        git_commit=None,
        environments=["stage"],
        argv=["apply", "--resume"],
        plan={"formatVersion": 1, "environments": []},
    )
    running = store.record_intent(second, "stage", "b1", "going", _request("going"), "h-g")
    store.record_fired(running, 77)
    uncertain = store.record_intent(second, "stage", "b1", "lost", _request("lost"), "h-l")
    store.record_ambiguous(uncertain, "the answer to startRun was lost")
    store.record_intent(second, "stage", "b2", "next", _request("next"), "h-n")
    store.finish_apply(second, "interrupted")


def _everything(store: SqlState) -> dict[str, Any]:
    """All a reader can ask of a state, as plain values."""
    applies = []
    apply_id = 1
    while (record := store.get_apply(apply_id)) is not None:
        applies.append((record, store.apply_plan(apply_id), store.runs_of_apply(apply_id)))
        apply_id += 1
    environments = ["prod", "dev", "stage"]
    return {
        "applies": applies,
        "serial": store.serial(),
        "serials": [store.serial([env]) for env in environments],
        "baseline": store.last_applied_runs(),
        "in flight": store.runs_in_flight(),
        "interrupted": store.interrupted_apply(),
        "last": [store.last_apply(env) for env in environments],
        "counters": [store.run_counters(env) for env in environments],
    }


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_a_whole_history_is_copied_and_reads_back_the_same(
    locate: Locate, clock: FakeClock, run_cli: RunCli, source_kind: str, target_kind: str
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
        before = _everything(store)

    result = run_cli("state", "copy", source, target)

    assert result.code == 0, result.text
    assert "2 applies, 7 runs, serial 15" in result.out
    assert "Verified: every row read back from the target matches the source" in result.out
    with _open(target, clock) as copied:
        assert _everything(copied) == before
    with _open(source, clock, readonly=True) as store:
        assert _everything(store) == before  # the source is only read


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS[:2])
def test_the_target_goes_on_where_the_source_left_off(
    locate: Locate, clock: FakeClock, source_kind: str, target_kind: str
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
    copy_state(source, target)

    with _open(target, clock) as copied:
        apply_id = copied.begin_apply(
            who="carol", host="ci-9", git_commit=None, environments=["prod"], argv=[]
        )
        run_id = copied.record_intent(apply_id, "prod", "b1", "load", _request("x"), "h")
        serial = copied.serials(["prod"])["prod"]
    assert (apply_id, run_id, serial) == (3, 8, 7)  # new ids and serials follow the copy


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS[:2])
def test_locks_held_in_the_source_are_not_copied_and_the_copy_says_so(
    locate: Locate, clock: FakeClock, run_cli: RunCli, source_kind: str, target_kind: str
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
        store.acquire_lock("prod", holder="alice", host="build-7", pid=4242, ttl_seconds=600)

        result = run_cli("state", "copy", source, target)

    assert result.code == 0, result.text
    assert "1 lock in the source was not copied (prod by alice on build-7 (pid 4242)" in (
        result.err
    )
    with _open(target, clock) as copied:
        assert copied.list_locks() == []


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS[:2])
def test_a_target_that_holds_anything_is_refused_and_left_as_it_was(
    locate: Locate, clock: FakeClock, run_cli: RunCli, source_kind: str, target_kind: str
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
    with _open(target, clock) as store:
        store.begin_apply(who="dave", host="h", git_commit=None, environments=["x"], argv=[])
        before = _everything(store)

    result = run_cli("state", "copy", source, target)

    assert result.code == 1
    shown = target if target_kind == "sqlite" else target.replace(f":{PASSWORD}@", "@")
    assert f"the target state at {shown} is not empty: it holds 1 apply, 0 runs, serial 0" in (
        result.err
    )
    assert "run again with --force to replace everything the target holds" in result.err
    with _open(target, clock) as store:
        assert _everything(store) == before


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS[:2])
def test_force_replaces_what_the_target_held(
    locate: Locate, clock: FakeClock, run_cli: RunCli, source_kind: str, target_kind: str
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
        expected = _everything(store)
    with _open(target, clock) as store:
        for _ in range(3):
            apply_id = store.begin_apply(
                who="dave", host="h", git_commit=None, environments=["prod"], argv=[]
            )
            store.record_intent(apply_id, "prod", "b", "old", _request("old"), "h-old")
        # A lock its holder left behind (its heartbeat long gone) is no reason to refuse.
        store.acquire_lock("prod", holder="gone", host="elsewhere", pid=1, ttl_seconds=1)
        store.close()  # on PostgreSQL, the lock's session ends with the store
    clock.advance(3600)

    result = run_cli("state", "copy", "--force", source, target)

    assert result.code == 0, result.text
    assert "Replaced what the target held: 3 applies, 3 runs, serial 3." in result.out
    with _open(target, clock) as copied:
        assert _everything(copied) == expected
        assert copied.list_locks() == []


@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_force_never_replaces_the_history_under_an_apply_holding_a_lock(
    locate: Locate, clock: FakeClock, run_cli: RunCli, target_kind: str
) -> None:
    source, target = locate("sqlite"), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
    with open_state(target) as holder:  # on the real clock, as a running apply is
        holder.begin_apply(who="erin", host="h", git_commit=None, environments=["prod"], argv=[])
        holder.acquire_lock(
            "prod", holder="erin", host=socket.gethostname(), pid=os.getpid(), ttl_seconds=600
        )

        result = run_cli("state", "copy", "--force", source, target)

        assert result.code == 1
        assert "has locks held by applies running against it (prod by erin on " in (result.err)
        assert holder.get_apply(2) is None and holder.get_apply(1) is not None


def _corrupting_trigger(target: str, target_kind: str, pg_server: PgServer | None) -> None:
    """A trigger on the target's runs table that changes what a copy writes (as a trigger
    or a default changed by hand on a real database would): the third run's message."""
    if target_kind == "postgres":
        assert pg_server is not None
        with pg_server.admin(target.rsplit("/", 1)[1]) as admin:
            admin.execute(
                "CREATE FUNCTION runner.meddle() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF NEW.id = 3 THEN NEW.message := 'changed on the way'; END IF;"
                " RETURN NEW; END $$"
            )
            admin.execute(
                "CREATE TRIGGER meddle BEFORE INSERT ON runner.runs"
                " FOR EACH ROW EXECUTE FUNCTION runner.meddle()"
            )
        return
    import sqlite3

    with sqlite3.connect(target) as connection:
        connection.execute(
            "CREATE TRIGGER meddle AFTER INSERT ON runs WHEN NEW.id = 3 BEGIN"
            " UPDATE runs SET message = 'changed on the way' WHERE id = NEW.id; END"
        )
    connection.close()


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS[:2])
def test_a_copy_that_does_not_read_back_as_the_source_is_rolled_back(
    locate: Locate,
    clock: FakeClock,
    run_cli: RunCli,
    request: pytest.FixtureRequest,
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = locate(source_kind), locate(target_kind)
    with _open(source, clock) as store:
        _history(store, clock)
    with _open(target, clock) as store:  # created (and migrated) empty
        assert _everything(store)["serial"] == 0
    server = request.getfixturevalue("pg_server") if target_kind == "postgres" else None
    _corrupting_trigger(target, target_kind, server)

    result = run_cli("state", "copy", source, target)

    assert result.code == 1, result.text
    assert "did not read back as the source: runs (7 rows copied, 7 read back) differ" in (
        result.err
    )
    assert "it was rolled back, and the target is as it was" in result.err
    with _open(target, clock) as store:
        assert store.get_apply(1) is None and store.serial() == 0


def test_an_error_midway_leaves_the_target_as_it_was(
    locate: Locate, clock: FakeClock, run_cli: RunCli, pg_server: PgServer
) -> None:
    source, target = locate("sqlite"), locate("postgres")
    with _open(source, clock) as store:
        _history(store, clock)
    with _open(target, clock) as store:
        assert store.serial() == 0
    with pg_server.admin(target.rsplit("/", 1)[1]) as admin:
        admin.execute(
            "ALTER TABLE runner.runs ADD CONSTRAINT no_stage CHECK (environment <> 'stage')"
        )

    result = run_cli("state", "copy", source, target)

    assert result.code == 1
    assert PASSWORD not in result.text
    with _open(target, clock) as store:
        assert store.get_apply(1) is None and store.serial() == 0


def test_a_source_that_does_not_exist_is_refused(
    locate: Locate, run_cli: RunCli, tmp_path: Path, pg_server: PgServer
) -> None:
    missing = run_cli("state", "copy", str(tmp_path / "nowhere.db"), locate("sqlite"))
    assert missing.code == 1
    assert f"there is no state at {tmp_path / 'nowhere.db'} to copy" in missing.err

    never_written = locate("postgres")
    empty = run_cli("state", "copy", never_written, locate("sqlite"))
    assert empty.code == 1
    assert "to copy (no schema runner there)" in empty.err
    assert PASSWORD not in empty.text


def test_a_state_is_not_copied_onto_itself(locate: Locate, run_cli: RunCli) -> None:
    url = locate("postgres")
    with open_state(url):
        pass
    for source, target in [
        (url, url.replace(PASSWORD, "another-password-1234") + "?sslmode=disable"),
        ("state.db", "./state.db"),
    ]:
        with open_state(source):
            pass
        result = run_cli("state", "copy", source, target)
        assert result.code == 1
        assert "is both the source and the target of the copy" in result.err
        assert PASSWORD not in result.text


def test_an_empty_state_copies_as_empty(locate: Locate, clock: FakeClock) -> None:
    source, target = locate("sqlite"), locate("postgres")
    with _open(source, clock):
        pass

    result = copy_state(source, target)

    assert result.copied.empty and result.replaced is None
    with _open(target, clock) as store:
        assert store.serial() == 0


def test_the_copy_is_a_library_call_with_a_result(locate: Locate, clock: FakeClock) -> None:
    source, target = locate("sqlite"), locate("postgres")
    with _open(source, clock) as store:
        _history(store, clock)

    result = copy_state(source, target)

    assert str(result.target) == target.replace(f":{PASSWORD}@", "@")
    assert result.copied.count("runs") == 7 and result.copied.serial == 15
    assert len(result.digest) == 64 and result.locks_not_copied == ()
    with pytest.raises(RunnerError, match="is not empty"):
        copy_state(source, target)


def test_times_keep_their_microseconds_both_ways(locate: Locate, clock: FakeClock) -> None:
    clock.now = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    source, middle, back = locate("sqlite"), locate("postgres"), locate("sqlite")
    with _open(source, clock) as store:
        _history(store, clock)
        expected = _everything(store)
    copy_state(source, middle)
    copy_state(middle, back)
    with _open(back, clock) as store:
        assert _everything(store) == expected


def test_a_failed_copy_over_a_fuller_target_leaves_its_ids_going_forward(
    locate: Locate, clock: FakeClock, pg_server: PgServer
) -> None:
    """A sequence is not rolled back with the copy: it must never be moved back below
    ids the target keeps, or its next apply collides with one of them."""
    source, target = locate("sqlite"), locate("postgres")
    with _open(target, clock) as store:
        kept = [
            store.begin_apply(who="t", host="h", git_commit=None, environments=["prod"], argv=[])
            for _ in range(5)
        ]
    with _open(source, clock) as store:
        apply_id = store.begin_apply(
            who="s", host="h", git_commit=None, environments=["prod"], argv=[]
        )
        store.record_intent(apply_id, "prod", "b", "load", _request("x"), "hash")
    with sqlite3.connect(source) as raw:  # text PostgreSQL refuses, after the applies
        raw.execute("UPDATE runs SET message = ?", ("a NUL \x00 byte from Coalesce",))

    with pytest.raises(RunnerError):
        copy_state(source, target, force=True)

    with _open(target, clock) as store:
        assert [store.get_apply(i) is not None for i in kept] == [True] * 5
        after = store.begin_apply(who="x", host="h", git_commit=None, environments=["p"], argv=[])
        assert after > max(kept)


def test_the_same_database_named_another_way_is_not_a_target(
    locate: Locate, clock: FakeClock
) -> None:
    url = locate("postgres")
    with _open(url, clock) as store:
        _history(store, clock)
    other_name = url.replace("@127.0.0.1:", "@localhost:")
    assert other_name != url

    with pytest.raises(RunnerError) as caught:
        copy_state(url, other_name, force=True)

    assert "is the state the copy reads from, named another way" in str(caught.value)
    with _open(url, clock) as store:
        assert store.get_apply(1) is not None  # nothing was replaced


def test_a_hard_link_to_the_state_file_is_the_same_state(
    locate: Locate, clock: FakeClock, tmp_path: Path
) -> None:
    source = locate("sqlite")
    with _open(source, clock) as store:
        _history(store, clock)
    linked = tmp_path / "linked.db"
    os.link(source, linked)

    with pytest.raises(RunnerError) as caught:
        copy_state(source, str(linked), force=True)
    assert "named another way" in str(caught.value)


def test_while_a_copy_writes_no_apply_can_take_a_lock_on_the_target(
    locate: Locate, clock: FakeClock, pg_server: PgServer
) -> None:
    """Taking an environment's lock waits for the copy's commit, so an apply never
    starts on the history the copy is replacing."""
    source, target = locate("sqlite"), locate("postgres")
    with _open(source, clock) as store:
        _history(store, clock)
    with _open(target, clock):
        pass
    with (
        _open(target, clock) as writer,
        writer.replacing("test"),
        pg_server.admin(target.rsplit("/", 1)[1]) as admin,
    ):
        admin.execute("SET lock_timeout = '200ms'")
        with pytest.raises(Exception, match="lock timeout"):
            admin.execute("INSERT INTO runner.locks (environment) VALUES ('prod')")


def test_a_copy_waits_for_an_apply_writing_the_target_and_neither_is_lost(
    locate: Locate, clock: FakeClock, pg_server: PgServer
) -> None:
    """A copy started while an apply's batch is writing the target (its run fired, the
    runCounter not yet committed) waits for that commit, holding nothing the apply
    needs: the runCounter is kept, and the copy is refused for the live lock. (Taking
    the tables one by one, the copy and the batch each held what the other waited for,
    and PostgreSQL killed the batch: a fired run lost its runCounter.)"""
    source, target = locate("sqlite"), locate("postgres")
    with _open(source, clock) as store:
        _history(store, clock)
    database = target.rsplit("/", 1)[1]
    outcome: dict[str, BaseException | None] = {}
    with _open(target, clock) as applying:
        applying.acquire_lock("prod", holder="apply 1", host=THIS_HOST, pid=os.getpid(),
                              ttl_seconds=60)  # fmt: skip
        apply_id = applying.begin_apply(
            who="alice", host="ci", git_commit=None, environments=["prod"], argv=[]
        )
        run_id = applying.record_intent(apply_id, "prod", "b1", "load", _request("x"), "h")

        def copy() -> None:
            try:
                copy_state(source, target)
                outcome["copy"] = None
            except BaseException as error:
                outcome["copy"] = error

        with applying.batch():
            applying.record_fired(run_id, 4242)
            copying = threading.Thread(target=copy)
            copying.start()
            wait_until(lambda: _waiting_for_a_lock(pg_server, database), what="the copy to wait")
        copying.join()
        run = applying.get_run(run_id)

    assert run is not None and (run.status, run.run_counter) == (RunStatus.WAITING_TO_RUN, 4242)
    assert isinstance(outcome["copy"], RunnerError)
    assert "has locks held by applies running against it" in str(outcome["copy"])


def _waiting_for_a_lock(pg_server: PgServer, database: str) -> bool:
    with pg_server.admin(database) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [database],
        ).fetchone()
    return row is not None and row[0] > 0
