"""A fault soak: a thousand runs against a simulator that fails, rate-limits, drops
connections after creating runs and answers late, three times with different seeds, and
interrupted with Ctrl-C then resumed. Every planned run is created exactly once, and
apply's final report says what the simulator did: each run's runCounter and status.
All of it runs twice: on a SQLite state, and on a PostgreSQL one.

The simulator is served over a socket, in its own process, and reset before each test.
Its faults are seeded, so each test draws the same sequence of faults; which request
draws which depends on the order concurrent requests arrive in, so what is asserted is
what must hold whatever the draw. Some draws leave work for a person, who is followed:

- a run whose startRun got an ambiguous answer (a 5xx: the simulator's create nothing)
  and that Coalesce does not show is left uncertain, by design: `runner apply --resume`
  looks for it again, and `--refire-uncertain` fires it anew once a person checked;
- a run whose startRun Coalesce refused (429, or 503 with Retry-After) on every try is
  provably not fired: the apply ends, and `runner apply --changed-only` fires just it.

Both are done with the faults still on. ``RUNNER_SOAK_RUNS`` (runs in all, spread over
ten environments; default 1000) scales the soak up.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import runner.coalesce.client as coalesce_client
import runner.sim
from runner.sim import SimClock, create_app, parse_world
from runner.state import ApplyRecord, Outcome, open_state
from tests.apply._support import ApplyProcess, SimServer, start_sim, tag_of
from tests.conftest import CliResult

RunCli = Callable[..., CliResult]

TOKEN = "tok-fault-soak"
ENVIRONMENTS = 10
RUNS = int(os.environ.get("RUNNER_SOAK_RUNS", "1000"))
RUNS_PER_ENVIRONMENT = max(1, RUNS // ENVIRONMENTS)
FAILING_EVERY = 10  # one run in ten selects the node that always fails
SEEDS = (7, 1009, 424242)
MAX_STEPS = 12
FAST = ("--max-concurrent", "50", "--poll-interval", "0.05", "--lookup-window", "0.5")
BAD_ERROR = "SQL compilation error: invalid identifier"

#: T1 completes and BAD fails, each in a few simulated milliseconds.
WORLD: dict[str, Any] = {
    "version": 1,
    "seed": 0,
    "tokens": [TOKEN],
    "projects": [
        {
            "id": "1",
            "name": "Soak",
            "nodes": [
                {"name": "S1", "location": "SRC", "nodeType": "Source"},
                {"name": "T1", "location": "STG", "dependsOn": ["S1"]},
                {"name": "BAD", "location": "FACT", "dependsOn": ["S1"]},
            ],
        }
    ],
    "environments": [
        {"id": str(i), "name": f"env{i:02d}", "project": "1"} for i in range(1, ENVIRONMENTS + 1)
    ],
    "behavior": {
        "startDelay": 0.01,
        "nodeSeconds": 0.01,
        "failures": [{"name": "BAD", "error": BAD_ERROR}],
    },
}


def faults(seed: int) -> dict[str, Any]:
    """10% 5xx (a 503 with Retry-After, which provably did nothing), 5% 429, 3% of
    startRuns dropped after the run was created, a random latency on a third of all."""
    return {
        "seed": seed,
        "latency": {"probability": 0.3, "ms": 1, "maxMs": 40},
        "rateLimit": {"probability": 0.05, "retryAfter": 0},
        "serverError": {"probability": 0.10, "statuses": [500, 502, 503], "retryAfter": 0},
        "dropAfterCreate": {"probability": 0.03},
    }


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimServer]:
    server = start_sim("--speed", "10")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Soak:
    """The simulator, the folder with the specs written for it, what was planned (tag ->
    ENV/RUN) and which of those runs select the node that fails."""

    sim: SimServer
    root: Path
    planned: dict[str, str]
    failing: set[str]
    state: str  # the state file, or the PostgreSQL state's URL

    def start(self, seed: int) -> None:
        self.sim.reset({**WORLD, "faults": faults(seed)}, speed=10)


@pytest.fixture
def soak(
    simulator: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_state: str
) -> Soak:
    """The soak, on a SQLite state and on a PostgreSQL one (``any_state``)."""
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    planned, failing = write_specs(tmp_path / "specs", simulator.url)
    return Soak(simulator, tmp_path, planned, failing, any_state)


def write_specs(folder: Path, url: str) -> tuple[dict[str, str], set[str]]:
    """One spec per environment of the world, ``RUNS_PER_ENVIRONMENT`` runs each, every
    run with its own ``tag`` parameter so that its copy in the simulator can be found.
    Returns tag -> ENV/RUN, and the runs that select the failing node."""
    folder.mkdir()
    planned: dict[str, str] = {}
    failing: set[str] = set()
    for environment in WORLD["environments"]:
        name = environment["name"]
        runs = []
        for i in range(RUNS_PER_ENVIRONMENT):
            run, tag = f"r{i:04d}", f"{name}-{i:04d}"
            fails = i % FAILING_EVERY == FAILING_EVERY - 1
            selector = "{ name: BAD }" if fails else "{ name: T1 }"
            runs.append({"name": run, "includeNodesSelector": selector, "parameters": {"tag": tag}})
            planned[tag] = f"{name}/{run}"
            if fails:
                failing.add(planned[tag])
        spec = {
            "version": 1,
            "environmentID": environment["id"],
            "name": name,
            "coalesce": {"url": url, "token": "{{ secret('COALESCE_TOKEN') }}"},
            "batches": [{"name": "all", "runs": runs}],
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return planned, failing


@dataclass
class Settled:
    """Where the applies left each run (the latest report of each), and what it took."""

    reports: dict[str, dict[str, Any]]
    last: CliResult
    steps: list[str]


def _identity(report: dict[str, Any]) -> str:
    return f"{report['environment']}/{report['name']}"


def _refused(report: dict[str, Any]) -> bool:
    """Coalesce refused its startRun, every try, in a way that proves nothing was done; or
    refused, every try, what apply reads before it fires (the environment's status), so
    that nothing was sent at all."""
    message = report["message"] or ""
    refused = "to POST /scheduler/startRun" in message
    unsent = report["status"] == "not-started" and message.startswith(
        "not fired: Coalesce answered"
    )
    return (refused or unsent) and ("429" in message or "503" in message)


def _uncertain(report: dict[str, Any]) -> bool:
    return bool(report["status"] == "uncertain")


def settle(soak: Soak, run_cli: RunCli, result: CliResult) -> Settled:
    """Finish the job as a person would, faults still on: ``apply --resume`` while apply
    reports runs whose fate it could not tell (it looks for them before firing again);
    ``apply --changed-only`` for runs Coalesce provably refused (only those are new)."""
    reports: dict[str, dict[str, Any]] = {}
    steps: list[str] = []
    while True:
        document: dict[str, Any] = json.loads(result.out)
        assert document["formatVersion"] == 1
        reports.update({_identity(r): r for r in document["runs"]})
        unsettled = [r for r in document["runs"] if r["status"] not in ("completed", "failed")]
        if not unsettled:
            return Settled(reports, result, steps)
        told = [(_identity(r), r["status"], r["message"]) for r in unsettled]
        # Only runs apply could not tell about, or that Coalesce refused, are left over
        # (named in full when not: the first of a long list may be a good one).
        unexplained = [
            (_identity(r), r["status"], r["message"])
            for r in unsettled
            if not (_uncertain(r) or _refused(r))
        ]
        assert not unexplained, unexplained
        uncertain = any(_uncertain(r) for r in unsettled)
        assert result.code == (5 if uncertain else 1), result.err[-3000:]
        created = {soak.planned[str(tag_of(r))] for r in soak.sim.runs()}
        refused_yet_created = [r for r in unsettled if _refused(r) and _identity(r) in created]
        assert not refused_yet_created, f"reported refused, yet created: {refused_yet_created}"
        assert len(steps) < MAX_STEPS, f"still unsettled after {steps}: {told}"
        if uncertain and steps[-1:] == ["resume"]:
            # Looked for again and still not shown (the simulator's 5xx create nothing):
            # the person, having checked Coalesce, fires them anew on purpose.
            steps.append("refire")
            result = run_cli("apply", "--resume", "--refire-uncertain", "--format", "json", *FAST)
        elif uncertain:
            steps.append("resume")  # the apply is unfinished: resume looks for them again
            result = run_cli("apply", "--resume", "--format", "json", *FAST)
        else:
            steps.append("changed-only")  # a finished apply: fire only what never ran
            result = run_cli("apply", "--changed-only", "--auto-approve", "--format", "json", *FAST)


def assert_exactly_once_and_reported(soak: Soak, settled: Settled) -> None:
    """Every planned run was created once in the simulator, no other run was, and apply
    reported each run with the simulator's runCounter and status."""
    sim_runs = soak.sim.runs()
    created = Counter(tag_of(r) for r in sim_runs)
    twice = sorted(str(tag) for tag, n in created.items() if n > 1)
    assert not twice, f"fired more than once: {twice}"
    missing = sorted(set(soak.planned) - set(created))
    unknown = sorted(str(t) for t in set(created) - set(soak.planned))
    assert not missing and not unknown, f"never created: {missing}; not planned: {unknown}"

    reported = settled.reports
    assert sorted(reported) == sorted(soak.planned.values())
    unexplained = []  # failed runs with no failed node and no word why
    for sim_run in sim_runs:
        identity = soak.planned[str(tag_of(sim_run))]
        mine = reported[identity]
        assert mine["runCounter"] == sim_run["runCounter"], (identity, mine, sim_run)
        assert mine["status"] == sim_run["status"], (identity, mine, sim_run)
        expected = "failed" if identity in soak.failing else "completed"
        assert mine["status"] == expected, (identity, mine)
        if expected == "failed" and mine["failedNodes"]:
            assert [n["name"] for n in mine["failedNodes"]] == ["BAD"], mine
        elif expected == "failed" and not mine["message"]:
            unexplained.append(identity)  # its results were unreadable through the faults
    last = json.loads(settled.last.out)
    some_failed = any(r["status"] == "failed" for r in last["runs"])
    assert settled.last.code == last["exitCode"] == (3 if some_failed else 0)
    assert not unexplained, f"failed, with no failed node and no word why: {unexplained}"


def assert_faults_were_met(soak: Soak) -> None:
    counted = soak.sim.counters()["faults"]
    for kind in ("429", "503", "drop", "latency"):
        assert counted.get(kind, 0) > 0, f"no {kind} fault in {counted}"
    assert counted.get("500", 0) + counted.get("502", 0) > 0, counted
    dropped = [r for r in soak.sim.start_runs() if r["dropped"]]
    assert dropped, "no startRun was dropped after creating its run"


@pytest.mark.parametrize("seed", SEEDS)
def test_runs_through_faults_are_each_fired_once_and_reported(
    run_cli: RunCli, soak: Soak, seed: int
) -> None:
    soak.start(seed)

    result = run_cli("apply", "--auto-approve", "--format", "json", *FAST)

    settled = settle(soak, run_cli, result)
    assert_exactly_once_and_reported(soak, settled)
    assert_faults_were_met(soak)


def _fired(lines: list[str]) -> int:
    """How many runs the progress lines show fired (given a runCounter)."""
    return sum(" waitingToRun run " in line for line in lines)


def test_interrupted_with_ctrl_c_then_resumed_fires_each_run_once(
    run_cli: RunCli, soak: Soak
) -> None:
    soak.start(SEEDS[0])
    apply = ApplyProcess(
        ["--auto-approve", *FAST],
        cwd=soak.root,
        env={"COALESCE_TOKEN": TOKEN, "RUNNER_STATE": soak.state},
    )
    try:
        apply.read_until(
            lambda lines: _fired(lines) >= max(1, RUNS // 5), what="a fifth of the runs fired"
        )
        apply.signal(signal.SIGINT)
        code, out, err = apply.finish()
    finally:
        apply.kill()
    assert code == 130, err[-3000:]
    assert "runner apply --resume" in out, out[-3000:]
    assert 0 < len(soak.sim.runs()) < len(soak.planned), "the interrupt left runs to fire"
    assert _last_apply(soak).outcome == Outcome.INTERRUPTED

    result = run_cli("apply", "--resume", "--state", soak.state, "--format", "json", *FAST)

    settled = settle(soak, run_cli, result)
    assert_exactly_once_and_reported(soak, settled)
    if "changed-only" not in settled.steps:  # then the interrupted apply finished it all
        record = _last_apply(soak)
        assert record.apply_id == 1 and record.resumed >= 1


def _last_apply(soak: Soak) -> ApplyRecord:
    with open_state(soak.state, readonly=True) as store:
        record = store.last_apply()
    assert record is not None
    return record


# -- what the soak found, pinned down -------------------------------------------------------

#: Reading a failed run's results answered 503 (with Retry-After) on every try.
RESULTS_UNREADABLE = {
    "serverError": {
        "probability": 1.0,
        "statuses": [503],
        "retryAfter": 0,
        "paths": ["/api/v1/runs/*/results"],
    }
}


@dataclass(frozen=True)
class _NoWaitClock(coalesce_client.Clock):
    """The client's clock, with backoff waits that do not wait."""

    sleep: Callable[[float], Awaitable[None]] = field(default=lambda seconds: _no_wait())


async def _no_wait() -> None:
    return None


def test_a_failed_run_whose_results_cannot_be_read_says_so(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = parse_world({**WORLD, "faults": RESULTS_UNREADABLE})
    monkeypatch.setattr(runner.sim, "_embedded", create_app(world, clock=SimClock(10)))
    monkeypatch.setattr(coalesce_client, "Clock", _NoWaitClock)  # its five tries, at once
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    write_spec(tmp_path / "specs", "sim://", [[("bad", "{ name: BAD }")]])

    result = run_cli("apply", "--auto-approve", "--format", "json", "--poll-interval", "0.05")

    assert result.code == 3, result.text[-3000:]
    [run] = json.loads(result.out)["runs"]
    assert run["status"] == "failed"
    # Either the failed nodes, or a word on why they are missing: never silence.
    assert run["failedNodes"] or run["message"], run


def test_a_resumed_apply_still_says_why_a_failed_run_has_no_failed_node(
    run_cli: RunCli, simulator: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holding = {**WORLD, "faults": RESULTS_UNREADABLE}
    holding["projects"] = [{**WORLD["projects"][0]}]
    holding["projects"][0]["nodes"] = [
        *WORLD["projects"][0]["nodes"],
        {"name": "HOLD", "location": "HOLD"},  # runs for days: the apply is still going
    ]
    holding["behavior"] = {**WORLD["behavior"], "durations": [{"name": "HOLD", "seconds": 1e6}]}
    simulator.reset(holding, speed=10)
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    write_spec(
        tmp_path / "specs",
        simulator.url,
        [[("bad", "{ name: BAD }")], [("hold", "{ name: HOLD }")]],
    )
    apply = ApplyProcess(
        ["--auto-approve", "--poll-interval", "0.05"], cwd=tmp_path, env={"COALESCE_TOKEN": TOKEN}
    )
    try:
        # The second batch is fired once the first has ended: bad is in the journal.
        apply.read_until(
            lambda lines: any("env01/hold waitingToRun run" in x for x in lines),
            what="the second batch fired",
        )
        apply.signal(signal.SIGINT)
        code, _out, err = apply.finish()
    finally:
        apply.kill()
    assert code == 130, err[-3000:]
    with open_state(tmp_path / ".runner" / "state.db", readonly=True) as store:
        journal = {r.name: r for r in store.runs_of_apply(1)}
    # The interrupted apply said why bad has no failed node, in its journal too.
    assert journal["bad"].status == "failed" and not journal["bad"].failed_nodes
    assert journal["bad"].message, journal["bad"]

    result = run_cli(
        "apply", "--resume", "--no-wait", "--format", "json", "--poll-interval", "0.05"
    )

    runs = {r["name"]: r for r in json.loads(result.out)["runs"]}
    assert runs["bad"]["status"] == "failed", runs["bad"]
    assert runs["bad"]["failedNodes"] or runs["bad"]["message"], runs["bad"]


def write_spec(folder: Path, url: str, batches: list[list[tuple[str, str]]]) -> None:
    """``folder/env01.yaml``: environment 1 with these batches of (run, selector)."""
    folder.mkdir()
    spec = {
        "version": 1,
        "environmentID": "1",
        "name": "env01",
        "coalesce": {"url": url, "token": "{{ secret('COALESCE_TOKEN') }}"},
        "batches": [
            {
                "name": f"b{i}",
                "onFailure": "continue",
                "runs": [{"name": n, "includeNodesSelector": sel} for n, sel in runs],
            }
            for i, runs in enumerate(batches)
        ],
    }
    (folder / "env01.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
