"""Environment locks: one holder at a time, stale ones taken over, waiting for one."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import pytest

from runner.errors import LockHeldError
from runner.state import (
    EnvironmentLocked,
    LockInfo,
    LockLostError,
    LockToken,
    SqlState,
    holder_with_ci_run,
    wait_for_lock_async,
)

from .conftest import BOTH_BACKENDS, THIS_HOST, FakeClock
from .processes import dead_pid, finish, read_line, spawn, tell

TTL = 60.0


def _take(
    store: SqlState, holder: str = "alice", *, host: str = THIS_HOST, pid: int | None = None
) -> LockToken:
    pid = os.getpid() if pid is None else pid
    return store.acquire_lock("prod", holder=holder, host=host, pid=pid, ttl_seconds=TTL)


@BOTH_BACKENDS
def test_a_held_lock_names_its_holder_and_how_to_recover(store: SqlState, clock: FakeClock) -> None:
    _take(store, "alice", host="ci-runner-3", pid=4242)
    clock.advance(5)

    with pytest.raises(LockHeldError) as caught:
        _take(store, "bob")
    message = str(caught.value)
    assert "alice" in message
    assert "ci-runner-3" in message
    assert "4242" in message
    assert "2024-05-01 12:00:00 UTC" in message
    assert "runner unlock prod" in message
    assert isinstance(caught.value, EnvironmentLocked)
    assert caught.value.lock.holder == "alice"


@BOTH_BACKENDS
def test_locks_of_different_environments_are_independent(store: SqlState) -> None:
    store.acquire_lock("prod", holder="a", host=THIS_HOST, pid=os.getpid(), ttl_seconds=TTL)
    dev = store.acquire_lock("dev", holder="b", host=THIS_HOST, pid=os.getpid(), ttl_seconds=TTL)
    assert dev.took_over is None
    assert [lock.environment for lock in store.list_locks()] == ["dev", "prod"]


@BOTH_BACKENDS
def test_processes_racing_for_a_lock_have_exactly_one_winner(
    open_store: Callable[..., SqlState], state_location: str
) -> None:
    open_store().close()  # create the state first, so the race is about the lock only
    racers = [spawn("lock", state_location, "prod", f"racer-{n}") for n in range(3)]
    try:
        for racer in racers:
            assert read_line(racer) == "ready"
        for racer in racers:
            tell(racer, "go")
        answers = [read_line(racer) for racer in racers]
    finally:
        for racer in racers:
            finish(racer)

    winners = [n for n, answer in enumerate(answers) if answer == "won"]
    assert len(winners) == 1, answers
    winner = f"racer-{winners[0]}"
    losers = [answer for answer in answers if answer != "won"]
    assert all(answer.startswith("lost ") and winner in answer for answer in losers), answers
    locks = open_store(readonly=True).list_locks()
    assert [(lock.environment, lock.holder) for lock in locks] == [("prod", winner)]


def test_a_lock_without_heartbeat_for_longer_than_its_ttl_is_taken_over(
    store: SqlState, clock: FakeClock
) -> None:
    old = _take(store, "alice", host="elsewhere")
    clock.advance(TTL + 1)

    assert store.list_locks()[0].stale
    new = _take(store, "bob")
    assert new.took_over is not None
    assert new.took_over.holder == "alice"
    assert new.took_over.stale_reason is not None
    assert "no heartbeat for 61s" in new.took_over.stale_reason

    with pytest.raises(LockLostError, match="now held by bob"):
        store.heartbeat(old)
    assert store.release_lock(old) is False
    assert [lock.holder for lock in store.list_locks()] == ["bob"]


def test_heartbeats_keep_a_lock_alive(store: SqlState, clock: FakeClock) -> None:
    token = _take(store, "alice", host="elsewhere")
    for _ in range(3):
        clock.advance(TTL - 1)
        store.heartbeat(token)

    with pytest.raises(EnvironmentLocked):
        _take(store, "bob")


def test_a_lock_whose_process_died_on_this_host_is_taken_over(store: SqlState) -> None:
    gone = dead_pid()
    _take(store, "alice", host=THIS_HOST, pid=gone)

    new = _take(store, "bob")
    assert new.took_over is not None
    assert new.took_over.pid == gone
    assert f"process {gone} is no longer running" in str(new.took_over.stale_reason)


def test_a_lock_whose_process_lives_on_this_host_is_held(store: SqlState) -> None:
    _take(store, "alice", host=THIS_HOST, pid=os.getpid())
    with pytest.raises(EnvironmentLocked):
        _take(store, "bob")


def test_the_pid_of_a_lock_from_another_host_is_not_checked_here(store: SqlState) -> None:
    _take(store, "alice", host="ci-runner-3", pid=dead_pid())
    with pytest.raises(EnvironmentLocked):
        _take(store, "bob")


def test_the_real_hostname_is_used_by_default(
    open_store: Callable[..., SqlState],
) -> None:
    store = open_store(hostname=None)
    _take(store, "alice", host=socket.gethostname(), pid=dead_pid())
    assert _take(store, "bob").took_over is not None


@BOTH_BACKENDS
def test_a_released_lock_can_be_taken_again(store: SqlState) -> None:
    token = _take(store, "alice")

    assert store.release_lock(token) is True
    assert store.release_lock(token) is False
    assert store.list_locks() == []
    assert _take(store, "bob").took_over is None


@BOTH_BACKENDS
def test_force_unlock_removes_a_lock_whoever_holds_it(store: SqlState) -> None:
    token = _take(store, "alice", host="ci-runner-3", pid=4242)

    removed = store.force_unlock("prod")
    assert removed is not None and removed.holder == "alice"
    assert store.force_unlock("prod") is None
    assert _take(store, "bob").took_over is None
    with pytest.raises(LockLostError):
        store.heartbeat(token)


@BOTH_BACKENDS
def test_a_lock_needs_a_positive_ttl(store: SqlState) -> None:
    with pytest.raises(ValueError):
        store.acquire_lock("prod", holder="a", host="h", pid=1, ttl_seconds=0)


# -- waiting for a lock -------------------------------------------------------------------


class FakeTime:
    """A monotonic clock and a sleep that advances it, running ``at_sleep`` hooks."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.at_sleep: dict[int, Callable[[], None]] = {}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        hook = self.at_sleep.get(len(self.sleeps))
        if hook is not None:
            hook()

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _wait(
    store: SqlState,
    fake: FakeTime,
    timeout: float,
    on_wait: Callable[[LockInfo], None] | None = None,
) -> LockToken:
    return asyncio.run(
        wait_for_lock_async(
            store,
            "prod",
            holder="bob",
            host=THIS_HOST,
            pid=os.getpid(),
            ttl_seconds=TTL,
            timeout=timeout,
            poll=2.0,
            sleep=fake.async_sleep,
            clock=fake.clock,
            on_wait=on_wait,
        )
    )


def _release(store: SqlState, token: LockToken) -> None:
    assert store.release_lock(token)


@BOTH_BACKENDS
def test_waiting_gets_the_lock_once_it_is_released(store: SqlState) -> None:
    holder = _take(store, "alice")
    fake = FakeTime()
    fake.at_sleep[3] = lambda: _release(store, holder)
    waited_for: list[str] = []

    token = _wait(store, fake, timeout=30, on_wait=lambda lock: waited_for.append(lock.holder))

    assert token.holder == "bob"
    assert fake.sleeps == [2.0, 2.0, 2.0]
    assert waited_for == ["alice"]


@BOTH_BACKENDS
def test_waiting_gives_up_at_the_timeout_naming_the_holder(store: SqlState) -> None:
    _take(store, "alice")
    fake = FakeTime()

    with pytest.raises(EnvironmentLocked) as caught:
        _wait(store, fake, timeout=5)
    assert sum(fake.sleeps) == 5
    assert fake.sleeps == [2.0, 2.0, 1.0]
    assert "alice" in str(caught.value)
    assert "waited 5s" in str(caught.value)


@BOTH_BACKENDS
def test_a_zero_timeout_tries_once_without_sleeping(store: SqlState) -> None:
    _take(store, "alice")
    fake = FakeTime()

    with pytest.raises(EnvironmentLocked):
        _wait(store, fake, timeout=0)
    assert fake.sleeps == []


async def test_waiting_from_asyncio_code(store: SqlState) -> None:
    holder = _take(store, "alice")
    fake = FakeTime()
    fake.at_sleep[1] = lambda: _release(store, holder)

    token = await wait_for_lock_async(
        store,
        "prod",
        holder="bob",
        host=THIS_HOST,
        pid=os.getpid(),
        ttl_seconds=TTL,
        timeout=10,
        sleep=fake.async_sleep,
        clock=fake.clock,
    )
    assert token.holder == "bob"
    assert fake.sleeps == [1.0]


def test_a_holder_in_ci_is_named_with_its_ci_run() -> None:
    github = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/warehouse",
        "GITHUB_RUN_ID": "77",
    }
    assert holder_with_ci_run("ci (apply 3)", github) == (
        "ci (apply 3), CI https://github.com/acme/warehouse/actions/runs/77"
    )
    assert holder_with_ci_run("ci", {"GITHUB_RUN_ID": "77"}) == "ci, CI run 77"
    assert holder_with_ci_run("alice", {}) == "alice"
