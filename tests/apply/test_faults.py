"""300 runs against a simulator that rate-limits, fails and drops connections: every
planned run is created exactly once, and apply reports each one's runCounter, whether
the state is a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.apply._support import SimView, batch, run, tag_of, world, write_spec

ENVIRONMENTS = (("1", "alpha"), ("2", "beta"), ("3", "gamma"))
RUNS_PER_ENVIRONMENT = 100
FAULTS = {
    "seed": 1234,
    "rateLimit": {"probability": 0.05, "retryAfter": 0},
    "serverError": {"probability": 0.05, "statuses": [500, 502, 503], "retryAfter": 0},
    "dropAfterCreate": {"probability": 0.08},
}


def test_faults_never_fire_a_run_twice_and_every_run_counter_is_right(
    run_cli, any_sim: SimView, specs: Path, any_state: str
) -> None:
    any_sim.reset(world(faults=FAULTS), speed=20)
    planned: dict[str, str] = {}  # tag -> identity
    for env_id, name in ENVIRONMENTS:
        runs = [run(f"{name}-{i:03d}") for i in range(RUNS_PER_ENVIRONMENT)]
        planned.update({r["name"]: f"{name}/{r['name']}" for r in runs})
        write_spec(specs, name, env_id, any_sim.url, [batch("all", runs)])

    result = run_cli(
        "apply", "--auto-approve", "--format", "json", "--poll-interval", "0.05",
        "--max-concurrent", "20", "--lookup-window", "1",
    )  # fmt: skip

    document = json.loads(result.out)
    unknown = [r for r in document["runs"] if r["status"] != "completed"]
    if unknown:
        # A 500 or 502 after startRun was sent is ambiguous: the simulator created nothing,
        # so the run stays uncertain. It is never fired again on its own: apply exits 5,
        # a resume looks again and leaves it so, and only --refire-uncertain fires it.
        assert result.code == 5
        assert all(r["status"] == "uncertain" for r in unknown), unknown
        any_sim.post("/_sim/faults", {})
        before = len(any_sim.start_runs())
        looked = run_cli("apply", "--resume", "--format", "json", "--lookup-window", "0")
        assert looked.code == 5, looked.err[-2000:]
        assert len(any_sim.start_runs()) == before, "a resume fired an uncertain run"
        resumed = run_cli(
            "apply", "--resume", "--refire-uncertain", "--format", "json",
            "--poll-interval", "0.05", "--lookup-window", "0",
        )  # fmt: skip
        assert resumed.code == 0, resumed.err[-2000:]
        assert len(any_sim.start_runs()) == before + len(unknown)
        document = json.loads(resumed.out)
    else:
        assert result.code == 0
    sim_runs = any_sim.runs()
    created = Counter(tag_of(r) for r in sim_runs)
    assert sorted(created) == sorted(planned), "a planned run is missing or unknown runs exist"
    assert max(created.values()) == 1, f"fired twice: {[t for t, n in created.items() if n > 1]}"

    faults = any_sim.counters()["faults"]
    assert faults.get("429", 0) > 0 and faults.get("drop", 0) > 0
    assert faults.get("500", 0) + faults.get("502", 0) > 0 and faults.get("503", 0) > 0

    assert document["formatVersion"] == 1 and document["exitCode"] == 0
    reported = {f"{r['environment']}/{r['name']}": r for r in document["runs"]}
    assert sorted(reported) == sorted(planned.values())
    for sim_run in sim_runs:
        mine = reported[planned[tag_of(sim_run) or ""]]
        assert mine["runCounter"] == sim_run["runCounter"], mine
        assert mine["status"] == sim_run["status"] == "completed"

    # Every dropped startRun created a run that apply found again, and adopted.
    dropped = [r for r in any_sim.start_runs() if r["dropped"]]
    assert dropped
    for request in dropped:
        identity = planned[request["body"]["parameters"]["tag"]]
        assert reported[identity]["runCounter"] == request["runCounter"]
    assert "looking for the run in Coalesce" in result.err
