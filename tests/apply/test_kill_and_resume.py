"""`runner apply` killed with SIGKILL at the worst moments, then `apply --resume`."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from runner.state import ApplyRecord, RunRecord, RunStatus, open_state
from tests.apply._support import (
    FROZEN,
    STAGING,
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


def _journal(state: Path) -> tuple[ApplyRecord, dict[str, RunRecord]]:
    store = open_state(state)
    try:
        last = store.last_apply()
        assert last is not None
        return last, {r.name: r for r in store.runs_of_apply(last.apply_id)}
    finally:
        store.close()


def _created_once(
    served: SimServer,
    names: list[str],
    *,
    ignore: set[int] = frozenset(),  # type: ignore[assignment]
) -> dict[str, int]:
    """Each of ``names`` was created exactly once in the simulator (runs in ``ignore``
    left aside): tag -> runCounter."""
    sim_runs = [r for r in served.runs() if r["runCounter"] not in ignore]
    created = Counter(tag_of(r) for r in sim_runs)
    assert sorted(created) == sorted(names), created
    assert set(created.values()) == {1}, f"fired twice: {created}"
    return {str(tag_of(r)): r["runCounter"] for r in sim_runs}


def test_sigkill_after_the_first_batch_fired_then_resume_fires_nothing_twice(
    run_cli, served: SimServer, specs: Path, tmp_path: Path
) -> None:
    served.reset(world(), speed=FROZEN)  # the runs stay in flight until the clock moves
    batches = [
        batch("first", [run("first-0"), run("first-1")]),
        batch("second", [run("second-0"), run("second-1")]),
        batch("third", [run("third-0")]),
    ]
    write_spec(specs, "alpha", "1", served.url, batches)
    names = [r["name"] for b in batches for r in b["runs"]]
    state = tmp_path / "state.db"
    apply = ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.05"],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(state)},
    )
    try:
        apply.read_until(
            lambda lines: fired(lines, ["alpha/first-0", "alpha/first-1"]),
            what="the first batch was fired",
        )
        apply.signal(signal.SIGKILL)
    finally:
        apply.kill()

    record, journal = _journal(state)
    assert record.outcome is None
    in_flight = {n: journal[n].run_counter for n in ("first-0", "first-1")}
    assert all(in_flight.values())
    assert "second-0" not in journal, "the second batch cannot have started yet"

    served.post("/_sim/clock", {"speed": 20})
    result = run_cli(
        "apply", "--resume", "--auto-approve", "--state", str(state), "--format", "json",
        "--poll-interval", "0.02",
    )  # fmt: skip

    assert result.code == 0, result.text
    counters = _created_once(served, names)
    document = json.loads(result.out)
    reported = {r["name"]: r for r in document["runs"]}
    assert sorted(reported) == sorted(names)
    for name in names:
        assert reported[name]["status"] == "completed"
        assert reported[name]["runCounter"] == counters[name]
    assert {n: reported[n]["runCounter"] for n in in_flight} == in_flight
    record, journal = _journal(state)
    assert record.outcome == "succeeded"
    assert record.resumed == 1


@pytest.mark.parametrize("earlier_twin", [False, True], ids=["alone", "with-an-earlier-twin"])
def test_sigkill_while_start_run_is_on_the_wire_then_resume_finds_the_run(
    run_cli, served: SimServer, specs: Path, tmp_path: Path, earlier_twin: bool
) -> None:
    slow_start = {"probability": 1.0, "ms": 500, "paths": ["/scheduler/startRun"]}
    served.reset(world(faults={"latency": slow_start}), speed=20)
    batches = [batch("first", [run("first-0")]), batch("second", [run("second-0")])]
    write_spec(specs, "alpha", "1", served.url, batches)
    if earlier_twin:
        # Someone else fired the very same request before this apply: it is not ours.
        twin = served.http.post(
            "/scheduler/startRun",
            json={
                "runDetails": {"environmentID": "1", "includeNodesSelector": STAGING},
                "parameters": {"tag": "second-0"},
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert twin.status_code == 200, twin.text
    before = {r["runCounter"] for r in served.runs()}
    state = tmp_path / "state.db"
    apply = ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.02"],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(state)},
    )
    try:
        apply.read_until(
            lambda lines: any("alpha/second-0 firing" in line for line in lines),
            what="the second batch's startRun was about to be sent",
        )
        # The request reached the simulator, which holds it for 500 ms: kill now.
        wait_until(lambda: served.counters()["inFlight"] >= 1, what="startRun in flight")
        apply.signal(signal.SIGKILL)
    finally:
        apply.kill()
    # The simulator still creates the run; its answer goes nowhere.
    wait_until(lambda: len(served.runs()) == len(before) + 2, what="the second run created")
    _, journal = _journal(state)
    assert journal["second-0"].status is RunStatus.INTENT

    served.post("/_sim/faults", {})
    result = run_cli("apply", "--resume", "--state", str(state), "--poll-interval", "0.02")

    assert result.code == 0, result.text
    counters = _created_once(served, ["first-0", "second-0"], ignore=before)
    assert f"the interrupted apply fired it as run {counters['second-0']}" in result.err
    _, journal = _journal(state)
    assert journal["second-0"].run_counter == counters["second-0"]
    assert journal["second-0"].status is RunStatus.COMPLETED
