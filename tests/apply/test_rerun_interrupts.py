"""Ctrl-C and SIGTERM in the middle of `runner rerun`, then `runner apply --resume`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from runner.state import Outcome, RunRecord, RunStatus, open_state
from tests.apply._support import (
    FAILING,
    FROZEN,
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    fired,
    hold_lock_elsewhere,
    run,
    tag_of,
    write_spec,
)

# Both runs always fail; the first batch goes on to the second when its run fails.
BATCHES = [
    batch("first", [run("bad-1", FAILING)], onFailure="continue"),
    batch("second", [run("bad-2", FAILING)]),
]


def _journal(state: Path) -> tuple[Any, dict[str, RunRecord], list[Any]]:
    store = open_state(state)
    try:
        last = store.last_apply()
        assert last is not None
        runs = {r.name: r for r in store.runs_of_apply(last.apply_id)}
        return last, runs, store.list_locks()
    finally:
        store.close()


def _start_rerun(tmp_path: Path, state: Path, *args: str) -> ApplyProcess:
    """`runner rerun --failed --auto-approve ARGS` as a process of its own."""
    return ApplyProcess(
        ["--failed", "--auto-approve", *args],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(state)},
        command="rerun",
    )


def _reruns_sent(served: SimServer) -> list[str]:
    """The tag of each rerun Coalesce created, in order."""
    return [tag_of(r) for r in served.runs() if r.get("reRunID") is not None]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_rerun_records_its_reruns_and_apply_resume_completes_it(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, how: signal.Signals
) -> None:
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    applied = run_cli("apply", "--auto-approve", "--state", str(state), "--poll-interval", "0.02")
    assert applied.code == 3, applied.text
    original = {tag_of(r): r["runCounter"] for r in served.runs()}
    served.post("/_sim/clock", {"speed": FROZEN})  # the reruns stay in flight

    rerun = _start_rerun(tmp_path, state, "--poll-interval", "0.02")
    try:
        rerun.read_until(lambda lines: fired(lines, ["alpha/bad-1"]), what="bad-1 was rerun")
        rerun.signal(how)
        code, out, err = rerun.finish()
    finally:
        rerun.kill()

    assert code == 130, err
    record, journal, locks = _journal(state)
    assert record.outcome is Outcome.INTERRUPTED
    assert not locks, "the lock is released"
    first = journal["bad-1"]
    assert first.status is RunStatus.WAITING_TO_RUN and first.run_counter is not None
    assert first.message == f"rerun of run {original['bad-1']}"
    assert journal["bad-2"].status is RunStatus.NOT_STARTED
    assert f"alpha/bad-1 (run {first.run_counter})" in out
    assert "Interrupted: nothing more was fired." in out
    assert "runner apply --resume" in out
    assert _reruns_sent(served) == ["bad-1"], "nothing more was sent"

    served.post("/_sim/clock", {"speed": 20})
    resumed = run_cli("apply", "--resume", "--state", str(state), "--poll-interval", "0.02")

    assert resumed.code == 3, resumed.text  # BAD fails again, as it always does
    assert sorted(_reruns_sent(served)) == ["bad-1", "bad-2"], "each rerun sent once"
    reran = {r["reRunID"]: r["runCounter"] for r in served.runs() if r.get("reRunID")}
    record, journal, _ = _journal(state)
    assert record.resumed == 1 and record.outcome is Outcome.FAILED
    for name in ("bad-1", "bad-2"):
        assert journal[name].status is RunStatus.FAILED
        assert journal[name].run_counter == reran[original[name]]
        assert journal[name].message == f"rerun of run {original[name]}"
    assert journal["bad-1"].run_counter == first.run_counter, "followed, not sent again"


def test_sigterm_ends_a_reruns_wait_for_the_lock_at_once_and_fires_nothing(
    run_cli, served: SimServer, specs: Path, tmp_path: Path
) -> None:
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    applied = run_cli("apply", "--auto-approve", "--state", str(state), "--poll-interval", "0.02")
    assert applied.code == 3, applied.text
    store = open_state(state)
    try:
        hold_lock_elsewhere(store, "alpha", ttl_seconds=600)
        rerun = _start_rerun(tmp_path, state, "--lock-timeout", "600")
        try:
            rerun.wait_for_the_lock()
            rerun.signal(signal.SIGTERM)
            code, _, err = rerun.finish(limit=10)
        finally:
            rerun.kill()
        assert [lock.holder for lock in store.list_locks()] == ["someone else"]
        last = store.last_apply()
    finally:
        store.close()

    assert code == 130, err
    assert "interrupted while waiting for a lock: nothing was fired" in err
    assert last is not None and last.apply_id == 1, "no apply was recorded"
    assert _reruns_sent(served) == []
