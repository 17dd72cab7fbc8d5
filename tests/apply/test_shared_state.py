"""Two machines sharing one PostgreSQL state: two working folders, two processes, and
nothing in common but the state URL (whose password must never show)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from runner.state import open_state
from tests.apply._support import (
    FROZEN,
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    fired,
    run,
    tag_of,
    wait_until,
    world,
    write_spec,
)
from tests.pg_server import PASSWORD, PgServer

BATCHES = [
    batch("first", [run("first-0"), run("first-1")]),
    batch("second", [run("second-0")]),
]
NAMES = ["first-0", "first-1", "second-0"]


def _machine(tmp_path: Path, name: str, served: SimServer) -> Path:
    """A working folder of its own, with its own copy of the specs."""
    folder = tmp_path / name
    write_spec(folder / "specs", "alpha", "1", served.url, BATCHES)
    return folder


def _apply(folder: Path, state: str, *args: str, **environ: str) -> ApplyProcess:
    return ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.02", *args],
        cwd=folder,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": state, **environ},
    )


GITHUB_RUN = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/warehouse",
    "GITHUB_RUN_ID": "4242",
}


def _no_password_anywhere(folders: list[Path], *texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path


def test_two_machines_applying_one_environment_fire_each_run_once(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    served.reset(world(), speed=FROZEN)  # whoever wins keeps the lock until the clock moves
    machines = [_machine(tmp_path, "ci-1", served), _machine(tmp_path, "ci-2", served)]
    first = _apply(machines[0], pg_url, **GITHUB_RUN)
    second = None
    try:
        first.read_until(lambda lines: fired(lines, ["alpha/first-0"]), what="the first fired")
        second = _apply(machines[1], pg_url, "--lock-timeout", "0")
        code, out, err = second.finish()
        assert code == 1, err
        assert "environment 'alpha' is locked by another apply" in out + err
        assert f"(pid {first.pid})" in out + err
        assert "CI https://github.com/acme/warehouse/actions/runs/4242" in out + err
        served.post("/_sim/clock", {"speed": 20})
        code, first_out, first_err = first.finish()
        assert code == 0, first_err
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES)
    _no_password_anywhere(machines, out, err, first_out, first_err)


def test_an_apply_killed_on_one_machine_is_resumed_on_another_without_firing_twice(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    served.reset(world(), speed=FROZEN)  # the runs stay in flight until the clock moves
    machines = [_machine(tmp_path, "ci-1", served), _machine(tmp_path, "ci-2", served)]
    killed = _apply(machines[0], pg_url)
    try:
        killed.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        killed.signal(signal.SIGKILL)  # its lock dies with its connection
    finally:
        killed.kill()
    with open_state(pg_url, readonly=True) as state:
        interrupted = state.interrupted_apply()
        assert interrupted is not None
        in_flight = {r.name: r.run_counter for r in state.runs_of_apply(interrupted.apply_id)}
    assert set(in_flight) == {"first-0", "first-1"} and all(in_flight.values())

    served.post("/_sim/clock", {"speed": 20})
    resumed = _apply(machines[1], pg_url, "--resume")
    try:
        code, out, err = resumed.finish()
    finally:
        resumed.kill()

    assert code == 0, err
    created = Counter(tag_of(r) for r in served.runs())
    assert created == Counter(NAMES), f"fired twice or lost: {created}"
    with open_state(pg_url, readonly=True) as state:
        record = state.get_apply(interrupted.apply_id)
        assert record is not None and record.outcome == "succeeded" and record.resumed == 1
        journal = {r.name: r for r in state.runs_of_apply(interrupted.apply_id)}
    assert {n: journal[n].run_counter for n in in_flight} == in_flight
    assert {r.status for r in journal.values()} == {"completed"}
    _no_password_anywhere(machines, out, err)


def test_a_database_stopped_mid_apply_stops_firing_and_resume_finishes_the_plan(
    served: SimServer, tmp_path: Path, pg_url: str, pg_server: PgServer
) -> None:
    served.reset(world(), speed=FROZEN)
    machines = [_machine(tmp_path, "ci-1", served), _machine(tmp_path, "ci-2", served)]
    broken = _apply(machines[0], pg_url)
    try:
        broken.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        pg_server.stop("immediate")
        try:
            served.post("/_sim/clock", {"speed": 20})  # the runs end: their ends can't be kept
            code, out, err = broken.finish()
        finally:
            pg_server.start()
    finally:
        broken.kill()
    assert code != 0
    assert "PostgreSQL state at postgresql://postgres@127.0.0.1" in out + err
    assert "second-0" not in {tag_of(r) for r in served.runs()}, "fired without a journal"

    resumed = _apply(machines[1], pg_url, "--resume")
    try:
        code, resumed_out, resumed_err = resumed.finish()
    finally:
        resumed.kill()
    assert code == 0, resumed_err
    wait_until(lambda: len(served.runs()) == 3, what="the three runs")
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES)
    _no_password_anywhere(machines, out, err, resumed_out, resumed_err)


def _runner(folder: Path, *args: str, **environ: str) -> tuple[int, str, str]:
    """``runner ARGS`` in ``folder``, to its end."""
    process = ApplyProcess(args[1:], cwd=folder, env={"COALESCE_TOKEN": TOKEN, **environ},
                           command=args[0])  # fmt: skip
    try:
        return process.finish()
    finally:
        process.kill()


def test_a_sqlite_state_copied_to_postgresql_is_planned_shown_and_resumed_from_another_machine(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    served.reset(world(), speed=FROZEN)
    machines = [_machine(tmp_path, "laptop", served), _machine(tmp_path, "ci-1", served)]
    killed = _apply(machines[0], "")  # the laptop's own .runner/state.db
    try:
        killed.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        killed.signal(signal.SIGKILL)  # its lock stays behind in the SQLite file
    finally:
        killed.kill()

    code, out, err = _runner(machines[0], "state", "copy", ".runner/state.db", pg_url)
    assert code == 0, err
    assert "1 apply, 2 runs" in out and "Verified" in out
    assert "1 lock in the source was not copied (alpha by " in err

    on_ci = {"RUNNER_STATE": pg_url}
    code, status_out, status_err = _runner(machines[1], "status", **on_ci)
    assert code == 0, status_err
    assert "Last apply: 1 (no outcome recorded" in status_out
    assert "alpha/first-0" in status_out and "alpha/first-1" in status_out
    assert "No locks held." in status_out  # the laptop's lock stayed in its file
    code, plan_out, plan_err = _runner(machines[1], "plan", "--offline", **on_ci)
    assert code == 0, plan_err
    assert "Plan: 1 new, 0 changed, 2 unchanged" in plan_out  # the baseline came across

    served.post("/_sim/clock", {"speed": 20})
    resumed = _apply(machines[1], pg_url, "--resume")
    try:
        code, resumed_out, resumed_err = resumed.finish()
    finally:
        resumed.kill()
    assert code == 0, resumed_err
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES)
    with open_state(pg_url, readonly=True) as state:
        record = state.get_apply(1)
        assert record is not None and record.outcome == "succeeded" and record.resumed == 1
    _no_password_anywhere(machines, out, err, status_out, plan_out, resumed_out, resumed_err)


def _holding(served: SimServer, tmp_path: Path, pg_url: str) -> tuple[list[Path], ApplyProcess]:
    """Two machines, the first applying (its runs held in flight by a frozen clock)."""
    served.reset(world(), speed=FROZEN)
    machines = [_machine(tmp_path, "ci-1", served), _machine(tmp_path, "ci-2", served)]
    first = _apply(machines[0], pg_url, **GITHUB_RUN)
    first.read_until(lambda lines: fired(lines, ["alpha/first-0"]), what="the first fired")
    return machines, first


def _waiting_for(process: ApplyProcess, holder: ApplyProcess) -> None:
    """Until ``process`` says it waits for the lock, naming ``holder``'s pid and CI run."""
    process.read_until(
        lambda lines: any(
            "waiting for the lock held by" in line
            and f"(pid {holder.pid})" in line
            and "CI https://github.com/acme/warehouse/actions/runs/4242" in line
            for line in lines
        ),
        what="the second apply waiting for the first's lock",
    )


def test_an_apply_waiting_on_another_machine_names_the_holder_then_fires_nothing_twice(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    machines, first = _holding(served, tmp_path, pg_url)
    second = None
    try:
        # As CI applies a merge: only what changed since the state it planned against.
        second = _apply(machines[1], pg_url, "--changed-only", "--lock-timeout", "120")
        _waiting_for(second, first)
        served.post("/_sim/clock", {"speed": 20})
        code, first_out, first_err = first.finish()
        assert code == 0, first_err
        # The lock is free: the second takes it, finds its plan overtaken, fires nothing.
        code, out, err = second.finish()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert code == 1, err
    assert "another apply ran in 'alpha' after the plan was made" in out + err
    assert "The plan is stale, so nothing was fired here" in out + err
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES)
    _no_password_anywhere(machines, out, err, first_out, first_err)


def test_a_lock_timeout_that_expires_names_the_holder_on_the_other_machine(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    machines, first = _holding(served, tmp_path, pg_url)
    second = None
    try:
        second = _apply(machines[1], pg_url, "--lock-timeout", "0.5")
        _waiting_for(second, first)
        code, out, err = second.finish()  # the holder's runs are frozen: it never lets go
        assert code == 1, err
        served.post("/_sim/clock", {"speed": 20})
        first_code, first_out, first_err = first.finish()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    said = out + err
    assert "environment 'alpha' is locked by another apply" in said
    assert f"(pid {first.pid})" in said and "(waited 0." in said
    assert "CI https://github.com/acme/warehouse/actions/runs/4242" in said
    assert first_code == 0, first_err
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES)
    _no_password_anywhere(machines, out, err, first_out, first_err)


def test_a_resume_waiting_on_another_machine_takes_over_when_the_holder_is_killed(
    served: SimServer, tmp_path: Path, pg_url: str
) -> None:
    machines, first = _holding(served, tmp_path, pg_url)
    resumed = None
    try:
        first.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        resumed = _apply(machines[1], pg_url, "--resume", "--lock-timeout", "120")
        _waiting_for(resumed, first)
        first.signal(signal.SIGKILL)  # its session ends, and the lock with it
        served.post("/_sim/clock", {"speed": 20})
        code, out, err = resumed.finish()
    finally:
        first.kill()
        if resumed is not None:
            resumed.kill()
    assert code == 0, err
    assert Counter(tag_of(r) for r in served.runs()) == Counter(NAMES), "fired twice or lost"
    with open_state(pg_url, readonly=True) as state:
        record = state.get_apply(1)
        assert record is not None and record.outcome == "succeeded" and record.resumed == 1
    _no_password_anywhere(machines, out, err)
