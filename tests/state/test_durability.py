"""A committed journal entry survives its writer being killed outright."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runner.state import RunStatus, SqlState

from .processes import finish, read_line, spawn


def test_a_committed_intent_survives_kill_9_of_its_writer(
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    writer = spawn("intent", str(state_file))
    try:
        marker = read_line(writer)
        writer.kill()  # SIGKILL: no atexit, no close, no checkpoint
        writer.wait(timeout=30)
    finally:
        finish(writer)
    assert marker.startswith("intent ")
    assert writer.returncode == -9
    wal = state_file.with_name(state_file.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the intent was still only in the WAL

    store = open_store()
    run = store.get_run(int(marker.split()[1]))
    assert run is not None
    assert run.status is RunStatus.INTENT
    assert run.identity == "prod/orders"
    interrupted = store.interrupted_apply()
    assert interrupted is not None and interrupted.apply_id == run.apply_id
    assert store.last_applied_runs()["prod/orders"].run_id == run.run_id
