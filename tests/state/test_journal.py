"""The apply journal: applies, runs from intent to end, the baseline and resume."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from runner.errors import RunnerError
from runner.state import Outcome, RunRecord, RunStatus, SqlState
from runner.state.sqlite import SqliteDatabase

from .conftest import BOTH_BACKENDS, FakeClock

pytestmark = BOTH_BACKENDS


def _request(selector: str = "{ location: STAGING }", **parameters: str) -> dict[str, Any]:
    return {
        "runDetails": {"environmentID": "12", "includeNodesSelector": selector},
        "parameters": parameters,
        "userCredentials": {"snowflakeUsername": "loader", "snowflakePassword": "(secret)"},
    }


def _begin(store: SqlState, *environments: str) -> int:
    return store.begin_apply(
        who="alice",
        host="build-7",
        git_commit="abc123",
        environments=list(environments or ("prod",)),
        argv=["apply", "--auto-approve"],
        plan_hash="sha256:plan",
    )


def _fire(
    store: SqlState,
    apply_id: int,
    name: str,
    *,
    environment: str = "prod",
    counter: int,
    status: RunStatus = RunStatus.COMPLETED,
    request: dict[str, Any] | None = None,
) -> int:
    run_id = store.record_intent(
        apply_id, environment, "marts", name, request or _request(), f"hash-{name}-{counter}"
    )
    store.record_fired(run_id, counter, f"https://app.coalescesoftware.io/runs/{counter}")
    if status is not RunStatus.WAITING_TO_RUN:
        store.record_status(run_id, status)
    return run_id


# -- applies ----------------------------------------------------------------------------


def test_an_apply_is_recorded_with_who_where_and_what(store: SqlState, clock: FakeClock) -> None:
    apply_id = _begin(store, "prod", "dev")

    record = store.get_apply(apply_id)
    assert record is not None
    assert (record.who, record.host, record.git_commit) == ("alice", "build-7", "abc123")
    assert record.environments == ("prod", "dev")
    assert record.argv == ("apply", "--auto-approve")
    assert record.plan_hash == "sha256:plan"
    assert record.started_at == clock.now
    assert not record.finished and record.finished_at is None


def test_finishing_an_apply_records_its_outcome_and_time(store: SqlState, clock: FakeClock) -> None:
    apply_id = _begin(store)
    clock.advance(90)
    store.finish_apply(apply_id, "failed")

    record = store.get_apply(apply_id)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert record.finished_at == clock.now


def test_an_unknown_outcome_is_refused(store: SqlState) -> None:
    apply_id = _begin(store)
    with pytest.raises(ValueError):
        store.finish_apply(apply_id, "sort of worked")


def test_last_apply_is_the_latest_overall_or_of_an_environment(store: SqlState) -> None:
    prod = _begin(store, "prod")
    dev = _begin(store, "dev")

    assert _id(store.last_apply()) == dev
    assert _id(store.last_apply("prod")) == prod
    assert store.last_apply("test") is None


def _id(record: Any) -> int | None:
    return None if record is None else int(record.apply_id)


# -- the journal round trip -------------------------------------------------------------


def test_a_run_goes_from_intent_to_fired_to_ended(store: SqlState, clock: FakeClock) -> None:
    apply_id = _begin(store)
    intent_time = clock.now
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "hash-1")

    intent = store.get_run(run_id)
    assert intent is not None
    assert intent.status is RunStatus.INTENT
    assert intent.run_counter is None
    assert intent.intent_at == intent_time
    assert intent.identity == "prod/orders"

    clock.advance(1)
    store.record_fired(run_id, 4711, "https://app.coalescesoftware.io/runs/4711")
    fired = store.get_run(run_id)
    assert fired is not None
    assert (fired.status, fired.run_counter) == (RunStatus.WAITING_TO_RUN, 4711)
    assert fired.run_link == "https://app.coalescesoftware.io/runs/4711"
    assert fired.fired_at == clock.now
    assert [r.run_id for r in store.runs_in_flight()] == [run_id]

    started = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    ended = datetime(2024, 5, 1, 12, 3, 0, tzinfo=UTC)
    failed_nodes = [{"nodeName": "ORDERS", "error": "division by zero"}]
    store.record_status(run_id, "running", started_at=started)
    store.record_status(
        run_id, "failed", ended_at=ended, failed_nodes=failed_nodes, message="1 node failed"
    )

    final = store.get_run(run_id)
    assert final is not None
    assert final.status is RunStatus.FAILED
    assert (final.started_at, final.ended_at) == (started, ended)
    assert final.failed_nodes == tuple(failed_nodes)
    assert final.message == "1 node failed"
    assert final.request == _request()
    assert final.request_hash == "hash-1"
    assert store.runs_in_flight() == []


def test_the_request_is_stored_as_json_with_sorted_keys(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = store.record_intent(
        apply_id, "prod", "marts", "orders", {"b": 1, "a": {"d": 2, "c": 3}}, "h"
    )

    stored = store.database.rows("SELECT request FROM runs WHERE id = ?", (run_id,))[0][0]
    assert stored == '{"a":{"c":3,"d":2},"b":1}'


def test_runs_of_an_apply_come_in_the_order_they_were_recorded(store: SqlState) -> None:
    first = _begin(store)
    other = _begin(store)
    a = _fire(store, first, "stage-all", counter=1)
    _fire(store, other, "customers", counter=2)
    b = _fire(store, first, "orders", counter=3)

    assert [r.run_id for r in store.runs_of_apply(first)] == [a, b]


def test_a_run_cannot_be_recorded_for_an_environment_outside_its_apply(
    store: SqlState,
) -> None:
    apply_id = _begin(store, "dev")
    with pytest.raises(ValueError, match="not 'prod'"):
        store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")


def test_a_run_cannot_be_recorded_for_an_unknown_apply(store: SqlState) -> None:
    with pytest.raises(LookupError):
        store.record_intent(99, "prod", "marts", "orders", _request(), "h")


def test_a_second_run_counter_for_the_same_run_is_refused(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = _fire(store, apply_id, "orders", counter=10, status=RunStatus.WAITING_TO_RUN)

    store.record_fired(run_id, 10)  # the same answer twice is harmless
    with pytest.raises(ValueError, match="already fired as runCounter 10"):
        store.record_fired(run_id, 11)
    run = store.get_run(run_id)
    assert run is not None and run.run_counter == 10


def test_a_status_from_the_server_needs_a_run_counter(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")

    with pytest.raises(ValueError, match="no runCounter"):
        store.record_status(run_id, "completed")


def test_a_fired_run_cannot_be_marked_as_never_fired(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = _fire(store, apply_id, "orders", counter=10, status=RunStatus.RUNNING)

    with pytest.raises(ValueError, match="was fired"):
        store.record_status(run_id, "not-started")


def test_an_intent_interrupted_before_sending_can_be_marked_not_started(
    store: SqlState,
) -> None:
    apply_id = _begin(store)
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")
    store.record_status(run_id, "not-started", message="interrupted before startRun")

    run = store.get_run(run_id)
    assert run is not None and run.status is RunStatus.NOT_STARTED


def test_unknown_statuses_are_refused(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = _fire(store, apply_id, "orders", counter=10, status=RunStatus.WAITING_TO_RUN)
    with pytest.raises(ValueError):
        store.record_status(run_id, "exploded")


def test_an_ambiguous_run_is_resolved_when_found_on_the_server(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")
    store.record_ambiguous(run_id, "read timeout after sending startRun")

    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.AMBIGUOUS
    assert run.message == "read timeout after sending startRun"

    store.record_fired(run_id, 77)
    found = store.get_run(run_id)
    assert found is not None
    assert (found.status, found.run_counter) == (RunStatus.WAITING_TO_RUN, 77)


def test_a_fired_run_cannot_become_ambiguous(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = _fire(store, apply_id, "orders", counter=5, status=RunStatus.RUNNING)
    with pytest.raises(ValueError):
        store.record_ambiguous(run_id, "late timeout")


def test_skipped_runs_are_recorded_without_being_fired(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = store.record_unfired(
        apply_id, "prod", "marts", "orders", _request(), "h", "skipped", message="staging failed"
    )

    run = store.get_run(run_id)
    assert run is not None
    assert (run.status, run.run_counter, run.message) == (
        RunStatus.SKIPPED,
        None,
        "staging failed",
    )
    with pytest.raises(ValueError):
        store.record_unfired(apply_id, "prod", "marts", "x", _request(), "h", "completed")


# -- in flight, find, baseline ----------------------------------------------------------


def test_runs_in_flight_are_the_fired_runs_not_known_to_have_ended(store: SqlState) -> None:
    apply_id = _begin(store, "prod", "dev")
    waiting = _fire(store, apply_id, "a", counter=1, status=RunStatus.WAITING_TO_RUN)
    running = _fire(store, apply_id, "b", counter=2, status=RunStatus.RUNNING)
    timed_out = _fire(store, apply_id, "c", counter=3, status=RunStatus.TIMEOUT)
    _fire(store, apply_id, "d", counter=4, status=RunStatus.COMPLETED)
    _fire(store, apply_id, "e", counter=5, status=RunStatus.CANCELED)
    in_dev = _fire(store, apply_id, "f", environment="dev", counter=6, status=RunStatus.RUNNING)
    store.record_intent(apply_id, "prod", "marts", "g", _request(), "h")

    assert [r.run_id for r in store.runs_in_flight()] == [waiting, running, timed_out, in_dev]
    assert [r.run_id for r in store.runs_in_flight("dev")] == [in_dev]
    assert all(r.run_counter is not None for r in store.runs_in_flight())


def test_find_run_returns_the_latest_run_of_an_identity(store: SqlState) -> None:
    first = _begin(store)
    second = _begin(store)
    _fire(store, first, "orders", counter=1)
    latest = _fire(store, second, "orders", counter=2, status=RunStatus.FAILED)

    found = store.find_run("prod/orders")
    assert found is not None and found.run_id == latest
    assert store.find_run("prod/unknown") is None
    with pytest.raises(ValueError, match="ENVIRONMENT/RUN"):
        store.find_run("orders")


def test_the_baseline_holds_the_latest_fired_run_of_each_identity(store: SqlState) -> None:
    first = _begin(store, "prod", "dev")
    _fire(store, first, "orders", counter=1, request=_request(load_date="2024-04-30"))
    _fire(store, first, "customers", counter=2)
    _fire(store, first, "orders", environment="dev", counter=3)
    second = _begin(store, "prod")
    newest = _fire(store, second, "orders", counter=4, request=_request(load_date="2024-05-01"))

    baseline = store.last_applied_runs()
    assert sorted(baseline) == ["dev/orders", "prod/customers", "prod/orders"]
    orders = baseline["prod/orders"]
    assert orders.run_id == newest
    assert orders.apply_id == second
    assert orders.request["parameters"] == {"load_date": "2024-05-01"}
    assert orders.request_hash == "hash-orders-4"
    assert orders.status is RunStatus.COMPLETED
    assert sorted(store.last_applied_runs(["dev"])) == ["dev/orders"]
    assert store.last_applied_runs([]) == {}


def test_a_skipped_run_does_not_replace_the_last_fired_one_in_the_baseline(
    store: SqlState,
) -> None:
    first = _begin(store)
    fired = _fire(store, first, "orders", counter=1)
    second = _begin(store)
    store.record_unfired(second, "prod", "marts", "orders", _request(), "h2", "skipped")

    assert store.last_applied_runs()["prod/orders"].run_id == fired


def test_a_run_whose_outcome_is_unknown_counts_as_applied(store: SqlState) -> None:
    apply_id = _begin(store)
    _fire(store, apply_id, "orders", counter=1)
    maybe = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h2")
    store.record_ambiguous(maybe, "connection reset after sending")

    baseline: dict[str, RunRecord] = store.last_applied_runs()
    assert baseline["prod/orders"].run_id == maybe
    assert baseline["prod/orders"].status is RunStatus.AMBIGUOUS


# -- resume -----------------------------------------------------------------------------


def test_an_interrupted_apply_is_found_for_resume(store: SqlState) -> None:
    done = _begin(store, "dev")
    store.finish_apply(done, "succeeded")
    interrupted = _begin(store, "prod")
    _fire(store, interrupted, "stage-all", counter=1)
    store.finish_apply(interrupted, Outcome.INTERRUPTED)

    found = store.interrupted_apply()
    assert found is not None and found.apply_id == interrupted
    assert _id(store.interrupted_apply("prod")) == interrupted
    assert store.interrupted_apply("dev") is None


def test_an_apply_that_never_finished_is_found_for_resume(store: SqlState) -> None:
    killed = _begin(store, "prod")  # its process died: no outcome was ever written
    store.record_intent(killed, "prod", "marts", "orders", _request(), "h")

    assert _id(store.interrupted_apply()) == killed


def test_an_interrupted_apply_is_not_resumed_over_newer_work(store: SqlState) -> None:
    interrupted = _begin(store, "prod", "dev")
    store.finish_apply(interrupted, "interrupted")
    later = _begin(store, "dev")
    store.finish_apply(later, "succeeded")

    assert store.interrupted_apply() is None


def test_an_interrupted_apply_is_still_found_after_an_apply_of_another_environment(
    store: SqlState,
) -> None:
    interrupted = _begin(store, "prod")
    store.finish_apply(interrupted, "interrupted")
    elsewhere = _begin(store, "dev")
    store.finish_apply(elsewhere, "succeeded")

    assert _id(store.interrupted_apply()) == interrupted


def test_finished_applies_are_not_resumable(store: SqlState) -> None:
    for outcome in ("succeeded", "failed", "timeout"):
        store.finish_apply(_begin(store), outcome)

    assert store.interrupted_apply() is None


def test_an_apply_that_ended_in_an_error_is_resumed_like_an_interrupted_one(
    store: SqlState,
) -> None:
    apply_id = _begin(store)
    store.finish_apply(apply_id, "errored")

    found = store.interrupted_apply()
    assert found is not None and found.apply_id == apply_id
    assert store.resume_apply(apply_id).resumed == 1


def test_resuming_reopens_the_same_apply(store: SqlState) -> None:
    apply_id = _begin(store)
    first = _fire(store, apply_id, "stage-all", counter=1)
    store.finish_apply(apply_id, "interrupted")

    resumed = store.resume_apply(apply_id)
    assert resumed.outcome is None and resumed.resumed == 1
    second = _fire(store, apply_id, "orders", counter=2)
    store.finish_apply(apply_id, "succeeded")

    assert [r.run_id for r in store.runs_of_apply(apply_id)] == [first, second]
    assert store.interrupted_apply() is None


def test_a_finished_apply_cannot_be_resumed(store: SqlState) -> None:
    apply_id = _begin(store)
    store.finish_apply(apply_id, "succeeded")
    with pytest.raises(RunnerError, match="nothing to resume"):
        store.resume_apply(apply_id)


# -- serial -----------------------------------------------------------------------------


def test_the_serial_grows_with_every_write_of_a_run(store: SqlState) -> None:
    apply_id = _begin(store)
    seen = [store.serial(["prod"])]
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")
    seen.append(store.serial(["prod"]))
    store.record_fired(run_id, 1)
    seen.append(store.serial(["prod"]))
    store.record_status(run_id, "completed")
    seen.append(store.serial(["prod"]))

    assert seen == [0, 1, 2, 3]
    assert store.serials(["prod"]) == {"prod": 3} and store.serial() == 3


def test_beginning_and_ending_an_apply_moves_no_serial(store: SqlState) -> None:
    """Only runs are what a plan compares with: an apply that fired nothing leaves a plan
    of its environments current."""
    apply_id = _begin(store)
    store.finish_apply(apply_id, "succeeded")
    assert store.serial() == 0 and store.serials(["prod"]) == {"prod": 0}


def test_a_refused_write_does_not_move_the_serial(store: SqlState) -> None:
    apply_id = _begin(store)
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", _request(), "h")
    before = store.serial()

    with pytest.raises(ValueError):
        store.record_status(run_id, "completed")  # no runCounter yet
    assert store.serial() == before


def test_locks_do_not_move_the_serial(store: SqlState) -> None:
    """A plan saved before apply takes its lock must not look stale because of it."""
    before = store.serial()
    token = store.acquire_lock("prod", holder="alice", host="build-7", pid=1, ttl_seconds=60)
    store.heartbeat(token)
    store.release_lock(token)
    assert store.serial() == before


def test_the_serial_never_goes_back_across_reopen(
    open_store: Callable[..., SqlState],
) -> None:
    first = open_store()
    _fire(first, _begin(first), "orders", counter=1)
    serial = first.serial()
    first.close()

    again = open_store()
    assert again.serial() == serial
    _fire(again, _begin(again), "orders", counter=2)
    assert again.serial() > serial


def test_the_serial_of_an_environment_moves_only_with_its_runs(store: SqlState) -> None:
    prod_apply = _begin(store, "prod")
    _fire(store, prod_apply, "orders", counter=1)
    prod_serial = store.serial(["prod"])
    assert prod_serial > 0 and store.serial(["dev"]) == 0

    dev_apply = _begin(store, "dev")
    _fire(store, dev_apply, "orders", environment="dev", counter=2)

    assert store.serial(["prod"]) == prod_serial
    assert store.serials(["prod", "dev", "test"]) == {
        "prod": prod_serial,
        "dev": store.serial(["dev"]),
        "test": 0,
    }
    assert store.serial(["prod", "dev"]) == prod_serial + store.serial(["dev"])
    assert store.serial([]) == 0 and store.serials([]) == {}

    store.record_status(store.runs_of_apply(prod_apply)[0].run_id, "completed", message="seen")
    assert store.serial(["prod"]) == prod_serial + 1


def test_a_batch_moves_each_environment_once_per_write_and_saves_it(store: SqlState) -> None:
    apply_id = _begin(store, "prod", "dev")
    with store.batch():
        for name in ("a", "b", "c"):
            store.record_intent(apply_id, "prod", "marts", name, _request(), "h")
        store.record_intent(apply_id, "dev", "marts", "a", _request(), "h")
    assert store.serials(["prod", "dev"]) == {"prod": 3, "dev": 1}
    runs = store.runs_of_apply(apply_id)
    with store.batch():
        for counter, run in enumerate(runs, start=1):
            store.record_fired(run.run_id, counter)
        store.record_status(runs[0].run_id, "running")  # the second write of a run
    assert store.serials(["prod", "dev"]) == {"prod": 7, "dev": 2}
    with store.reading() as db:
        last_writes = db.rows("SELECT environment, name, changed_serial FROM runs ORDER BY id")
    # each run keeps the serial of its last write, in the order of the writes
    assert [(row[0], row[1], row[2]) for row in last_writes] == [
        ("prod", "a", 7),
        ("prod", "b", 5),
        ("prod", "c", 6),
        ("dev", "a", 2),
    ]


def test_a_batch_over_hundreds_of_environments_fits_sqlites_oldest_variable_limit(
    store: SqlState,
) -> None:
    """SQLite before 3.32 takes at most 999 variables in a statement."""
    if isinstance(store.database, SqliteDatabase):
        store.database.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    environments = [f"env{n:03d}" for n in range(450)]
    apply_id = _begin(store, *environments)
    with store.batch():
        for environment in environments:
            for name in ("a", "b"):
                store.record_intent(apply_id, environment, "b", name, _request(), "h")
    assert set(store.serials(environments).values()) == {2}


def test_a_batch_rolled_back_leaves_the_serials_and_no_memory_of_its_runs(
    open_store: Callable[..., SqlState],
) -> None:
    """An id a rolled-back insert gave out may be given out again (SQLite does), here to
    a run of another environment by another process: the first must not keep the
    rolled-back run's environment for that id."""
    first, second = open_store(), open_store()
    apply_id = _begin(first, "prod", "dev")
    with pytest.raises(RuntimeError), first.batch():
        first.record_intent(apply_id, "prod", "marts", "a", _request(), "h")
        raise RuntimeError("the batch fails")
    assert first.serials(["prod", "dev"]) == {"prod": 0, "dev": 0}

    run_id = second.record_intent(apply_id, "dev", "marts", "a", _request(), "h")
    first.record_fired(run_id, 7)

    assert first.serials(["prod", "dev"]) == {"prod": 0, "dev": 2}


def test_apply_keeps_its_plan_and_counters_are_known(store: SqlState) -> None:
    plan = {"formatVersion": 1, "runs": [{"name": "a"}]}
    apply_id = store.begin_apply(
        who="w", host="h", git_commit=None, environments=["e"], argv=["apply"], plan=plan
    )
    run_id = store.record_intent(apply_id, "e", "b", "a", {"x": 1}, "h1")
    store.record_fired(run_id, 41)
    assert store.apply_plan(apply_id) == plan
    assert store.run_counters("e") == {41}
    assert store.run_counters("other") == set()
