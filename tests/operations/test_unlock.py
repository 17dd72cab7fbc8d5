"""``runner unlock ENV``: remove a held lock, say whose it was, warn when it looked alive."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from runner.state import open_state
from tests.conftest import CliResult
from tests.operations.conftest import RunCli, Workspace, apply_args


def test_unlocking_a_live_lock_removes_it_and_warns_its_holder_may_be_running(
    run_cli: RunCli, workspace: Workspace
) -> None:
    with open_state(workspace.state) as store:
        store.acquire_lock(
            "ops", holder="alice", host=socket.gethostname(), pid=os.getpid(), ttl_seconds=600
        )

    result: CliResult = run_cli("unlock", "ops")

    assert result.code == 0
    assert "Removed the lock of 'ops'" in result.out
    assert f"held by alice on {socket.gethostname()} (pid {os.getpid()})" in result.out
    assert "did not look stale" in result.err
    assert "may still be running" in result.err
    with workspace.read_state() as store:
        assert store.list_locks() == []


def test_unlocking_a_stale_lock_says_why_it_was_stale_without_a_warning(
    run_cli: RunCli, workspace: Workspace
) -> None:
    with open_state(workspace.state) as store:
        store.acquire_lock(
            "ops",
            holder="bob",
            host="build-9",
            pid=4242,
            ttl_seconds=60,
            now=datetime.now(UTC) - timedelta(hours=1),
        )

    result = run_cli("unlock", "ops")

    assert result.code == 0
    assert "held by bob on build-9 (pid 4242)" in result.out
    assert "it was stale: no heartbeat" in result.out
    assert result.err == ""


def test_unlocking_a_free_environment_says_so(run_cli: RunCli, workspace: Workspace) -> None:
    assert run_cli(*apply_args("good")).code == 0  # the state knows ops
    with open_state(workspace.state) as store:
        store.acquire_lock("other", holder="carol", host="h", pid=1, ttl_seconds=60)
    result = run_cli("unlock", "ops")
    assert result.code == 0
    assert "'ops' was not locked (locks held: 'other')." in result.out
    with workspace.read_state() as store:
        assert [lock.environment for lock in store.list_locks()] == ["other"]


def test_unlocking_an_environment_the_state_never_saw_is_an_error_naming_the_known_ones(
    run_cli: RunCli, workspace: Workspace
) -> None:
    assert run_cli(*apply_args("good")).code == 0
    with open_state(workspace.state) as store:
        store.acquire_lock("other", holder="carol", host="h", pid=1, ttl_seconds=60)
    result = run_cli("unlock", "opps")
    assert result.code == 1
    assert "unknown environment 'opps'" in result.err
    assert "'ops', 'other'" in result.err and "did you mean 'ops'?" in result.err
    with workspace.read_state() as store:
        assert [lock.environment for lock in store.list_locks()] == ["other"]


def test_unlocking_without_a_state_is_an_error_and_creates_none(
    run_cli: RunCli, workspace: Workspace
) -> None:
    result = run_cli("unlock", "ops")
    assert result.code == 1
    assert "nothing was ever applied with the state at" in result.err
    assert "--state" in result.err
    assert not workspace.state.exists()
