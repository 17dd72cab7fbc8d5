"""Two applies of one environment at once, and Ctrl-C in the middle of an apply."""

from __future__ import annotations

import getpass
import re
import signal
import socket
from collections import Counter
from pathlib import Path

import pytest

from runner.sim.clock import parse_time
from runner.state import Outcome, RunStatus, open_state
from tests.apply._support import (
    FROZEN,
    STAGING,
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    fired,
    hold_lock_elsewhere,
    run,
    tag_of,
    wait_until,
    world,
    write_spec,
)

BATCHES = [
    batch("first", [run("first-0"), run("first-1")]),
    batch("second", [run("second-0")]),
]
NAMES = ["first-0", "first-1", "second-0"]


def _start(tmp_path: Path, state: Path, *args: str) -> ApplyProcess:
    return ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.02", *args],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(state)},
    )


def test_a_second_apply_of_a_locked_environment_fails_naming_the_holder(
    served: SimServer, specs: Path, tmp_path: Path
) -> None:
    served.reset(world(), speed=FROZEN)  # whoever wins keeps the lock until the clock moves
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    both = [_start(tmp_path, state), _start(tmp_path, state)]
    try:
        loser = wait_until(
            lambda: next((a for a in both if a.process.poll() is not None), None),
            what="one of the two applies to give up",
        )
        winner = both[1 - both.index(loser)]
        code, out, err = loser.finish()
        assert code == 1, err
        holder = rf"{getpass.getuser()} \(apply \d\) on {socket.gethostname()} \(pid {winner.pid}\)"
        assert re.search(rf"environment 'alpha' is locked by another apply: {holder}", out)
        assert "--lock-timeout" in out + err

        served.post("/_sim/clock", {"speed": 20})
        code, out, err = winner.finish()
        assert code == 0, err
    finally:
        for apply in both:
            apply.kill()
    created = Counter(tag_of(r) for r in served.runs())
    assert created == Counter(NAMES), "each run is fired once, by the apply holding the lock"


def test_with_lock_timeout_the_second_apply_waits_then_fires_after_the_first(
    served: SimServer, specs: Path, tmp_path: Path
) -> None:
    served.reset(world(), speed=FROZEN)
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    first = _start(tmp_path, state)
    second = None
    try:
        first.read_until(lambda lines: fired(lines, ["alpha/first-0"]), what="the first fired")
        second = _start(tmp_path, state, "--lock-timeout", "60")
        second.read_until(
            lambda lines: any("waiting for the lock held by" in line for line in lines),
            what="the second apply waiting for the lock",
        )
        assert f"(pid {first.pid})" in second.lines[-1]
        served.post("/_sim/clock", {"speed": 20})
        assert first.finish()[0] == 0
        code, _, err = second.finish()
        assert code == 0, err
    finally:
        first.kill()
        if second is not None:
            second.kill()
    sim_runs = sorted(served.runs(), key=lambda r: r["runCounter"])
    assert Counter(tag_of(r) for r in sim_runs) == Counter(NAMES * 2)
    # The second apply fired nothing while the first held the environment.
    first_apply, second_apply = sim_runs[:3], sim_runs[3:]
    first_done = max(parse_time(r["endedAt"]) for r in first_apply)
    assert min(parse_time(r["createdAt"]) for r in second_apply) >= first_done


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_stops_firing_records_the_runs_in_flight_and_resume_completes(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, how: signal.Signals
) -> None:
    served.reset(world(), speed=FROZEN)
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    apply = _start(tmp_path, state)
    try:
        apply.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        apply.signal(how)
        code, out, err = apply.finish()
    finally:
        apply.kill()

    assert code == 130, err
    store = open_state(state)
    try:
        record = store.last_apply()
        assert record is not None and record.outcome is Outcome.INTERRUPTED
        journal = {r.name: r for r in store.runs_of_apply(record.apply_id)}
        assert not store.list_locks(), "the lock is released"
    finally:
        store.close()
    in_flight = {n: journal[n].run_counter for n in ("first-0", "first-1")}
    for name, counter in in_flight.items():
        assert journal[name].status is RunStatus.WAITING_TO_RUN and counter
        assert f"alpha/{name} (run {counter})" in out
    assert journal["second-0"].status is RunStatus.NOT_STARTED
    assert "Interrupted: nothing more was fired." in out
    assert "Still running in Coalesce:" in out
    assert "runner cancel" in out and "runner apply --resume" in out
    # Runs of one batch are fired concurrently: which reaches Coalesce first is not promised.
    assert sorted(tag_of(r) for r in served.runs()) == ["first-0", "first-1"]

    served.post("/_sim/clock", {"speed": 20})
    result = run_cli("apply", "--resume", "--state", str(state), "--poll-interval", "0.02")

    assert result.code == 0, result.text
    created = {tag_of(r): r["runCounter"] for r in served.runs()}
    assert sorted(created) == sorted(NAMES) and len(served.runs()) == 3
    assert {n: created[n] for n in in_flight} == in_flight
    assert "3 completed" in result.out


@pytest.mark.parametrize("how", ["plan-file", "changed-only"])
def test_a_plan_that_went_stale_while_waiting_for_the_lock_fires_nothing(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, how: str
) -> None:
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    args = ["--changed-only"]
    if how == "plan-file":
        assert run_cli("plan", "--offline", "--out", "plan.json", "--state", str(state)).code == 0
        args = ["plan.json"]
    store = open_state(state)
    try:
        held = hold_lock_elsewhere(store, "alpha", ttl_seconds=60)
        waiting = _start(tmp_path, state, *args, "--lock-timeout", "60")
        try:
            waiting.wait_for_the_lock()
            # Meanwhile, the holder applies alpha.
            other = store.begin_apply(
                who="someone else", host="elsewhere", git_commit=None,
                environments=["alpha"], argv=[],
            )  # fmt: skip
            journal = store.record_intent(other, "alpha", "first", "first-0", {}, "hash")
            store.record_fired(journal, 999)
            store.release_lock(held)
            code, out, err = waiting.finish()
        finally:
            waiting.kill()
    finally:
        store.close()

    assert code == 1, err
    assert "another apply ran in 'alpha' after the plan was made" in out
    assert "make a new plan" in out
    assert served.start_runs() == [], "nothing fired from the stale plan"


def test_ctrl_c_ends_a_wait_for_the_lock_at_once(
    served: SimServer, specs: Path, tmp_path: Path
) -> None:
    write_spec(specs, "alpha", "1", served.url, BATCHES)
    state = tmp_path / "state.db"
    store = open_state(state)
    try:
        hold_lock_elsewhere(store, "alpha", ttl_seconds=600)
        waiting = _start(tmp_path, state, "--lock-timeout", "600")
        try:
            waiting.wait_for_the_lock()
            waiting.signal(signal.SIGINT)
            code, out, err = waiting.finish(limit=10)
        finally:
            waiting.kill()
        assert store.list_locks()[0].holder == "someone else"
    finally:
        store.close()

    assert code == 130, err
    assert "apply was interrupted while waiting for the lock" in out
    assert "runner apply --resume" in out
    assert served.start_runs() == []


def test_a_run_fired_by_the_apply_it_waited_for_is_never_taken_for_its_own(
    served: SimServer, specs: Path, tmp_path: Path
) -> None:
    """The apply holding the lock fired a run it never recorded (it died with the answer
    on the wire): an identical request of ours, answered 500, must not adopt it."""
    write_spec(specs, "alpha", "1", served.url, [batch("only", [run("one")])])
    state = tmp_path / "state.db"
    store = open_state(state)
    try:
        held = hold_lock_elsewhere(store, "alpha", ttl_seconds=60)
        waiting = _start(tmp_path, state, "--lock-timeout", "60", "--lookup-window", "0.5")
        try:
            waiting.wait_for_the_lock()
            theirs = served.http.post(
                "/scheduler/startRun",
                json={
                    "runDetails": {"environmentID": "1", "includeNodesSelector": STAGING},
                    "parameters": {"tag": "one"},
                },
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).json()["runCounter"]
            served.post(
                "/_sim/faults",
                {"serverError": {"probability": 1.0, "statuses": [500],
                                 "paths": ["/scheduler/startRun"]}},
            )  # fmt: skip
            store.release_lock(held)
            code, out, err = waiting.finish()
        finally:
            waiting.kill()
    finally:
        store.close()

    assert code == 5, err
    assert f"found it as run {theirs}" not in err
    assert "uncertain" in out and "alpha/one" in out
    assert "runner apply --resume --refire-uncertain" in out
