"""An interrupt against a server that never answers: nothing more is sent, and the
process ends within seconds whatever the server does (over a real socket)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from runner.state import RunStatus, open_state
from tests.apply._support import (
    TOKEN,
    ApplyProcess,
    SimServer,
    batch,
    run,
    wait_until,
    world,
    write_spec,
)

NAMES = ("one", "two", "three")
HANG = {"latency": {"probability": 1.0, "ms": 60_000, "paths": ["/scheduler/startRun"]}}


def _entered(served: SimServer) -> int:
    """Every request that reached the simulator: answered ones and those it still holds."""
    counters = served.counters()
    return int(counters["requests"]) + int(counters["inFlight"])


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_after_an_interrupt_no_request_reaches_the_server_and_apply_ends_in_seconds(
    served: SimServer, specs: Path, tmp_path: Path, how: signal.Signals
) -> None:
    served.reset(world(faults=HANG))
    write_spec(specs, "alpha", "1", served.url, [batch("all", [run(n) for n in NAMES])])
    state = tmp_path / "state.db"
    apply = ApplyProcess(
        ["--auto-approve", "--max-concurrent", "1", "--poll-interval", "0.02"],
        cwd=tmp_path,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": str(state)},
    )
    try:
        wait_until(lambda: served.counters()["inFlight"] == 1, what="a startRun on the wire")
        entered = _entered(served)
        signalled = time.monotonic()
        apply.signal(how)
        code, out, err = apply.finish(limit=30)
        took = time.monotonic() - signalled
    finally:
        apply.kill()

    assert code == 130, err
    assert took < 5, f"the process took {took:.1f} s to end after the interrupt"
    assert _entered(served) == entered, "a request reached the server after the interrupt"
    assert len(served.start_runs()) == 0  # the held startRun is still held: not logged yet
    with open_state(state) as store:
        record = store.last_apply()
        assert record is not None
        journal = {r.name: r.status for r in store.runs_of_apply(record.apply_id)}
    on_the_wire = [n for n, status in journal.items() if status is RunStatus.AMBIGUOUS]
    assert len(on_the_wire) == 1, journal  # uncertain: never fired again on its own
    assert all(journal[n] is RunStatus.NOT_STARTED for n in NAMES if n not in on_the_wire)
    assert "uncertain" in out and "runner apply --resume" in out
