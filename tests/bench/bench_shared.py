"""Benchmark: 10 applies of 10 different environments at once, on one PostgreSQL state.

Each apply is ``runner apply specs/envN.yaml`` (100 runs, 20 ms of latency on every
request, ``--max-concurrent 50``), run as its own process, as ten CI jobs sharing one
state would. First each alone, one after the other (on one database); then all ten at
once (on another). Targets, from the issue: no apply waits for another's lock, no
deadlock, and each apply's wall time at once within 1.5x of its time alone.

Two workloads:

* ``shared_state_ci_applies``: what a CI job runs, ``apply`` firing its runs, waiting
  for them (each takes 15 s in the simulator, polled every second) and fetching their
  results. Real refreshes take minutes, which would only make the apply's own work a
  smaller part of its time.
* ``shared_state_applies``: the firing alone (``--no-wait``), a stress test with no
  waiting at all. Ten processes that only compute share this machine's 2 cores, so each
  takes several times its time alone whatever the state; the same ten are also run at
  once on ten separate SQLite files, a bound measured in the same run with the same
  contention for the cores and none for a state, and what the shared PostgreSQL state
  costs is ``wall_ratio_to_separate_sqlite``.

Lock waits inside PostgreSQL (a journal write waiting for another's commit) are counted
from the server's log, which records every wait longer than 10 ms (``log_lock_waits``,
``deadlock_timeout = 10ms``); deadlocks from ``pg_stat_database``. Every run's last
journal write must hold a serial of its own within its environment.
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.state import open_state
from tests.bench._common import (
    RUNNER,
    Figures,
    Finished,
    ServedSimulator,
    apply_document,
    at_least,
    at_most,
    parse_time,
    ratio,
    result,
    run_measured,
    runner_env,
    seconds,
    simple_spec,
    world_yaml,
)
from tests.bench.bench_fire import postgres
from tests.pg_server import PgServer

ENVIRONMENTS = 10
RUNS_PER_ENVIRONMENT = 100
LATENCY_MS = 20
MAX_CONCURRENT = 50
RATIO_TARGET = 1.5
RUN_SECONDS = 15.0


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    options: tuple[str, ...]


FIRE_ONLY = Workload(
    "shared_state_applies",
    "apply --no-wait: the firing alone, no waiting (a stress test of the state)",
    ("--no-wait",),
)
CI_APPLY = Workload(
    "shared_state_ci_applies",
    f"apply as a CI job runs it: fire, wait for the runs ({RUN_SECONDS:g} s each, polled"
    " every 1 s), fetch their results",
    ("--poll-interval", "1"),
)


def run(work_dir: Path) -> list[Figures]:
    world = work_dir / "world.yaml"
    world.write_text(world_yaml(ENVIRONMENTS, node_seconds=RUN_SECONDS))
    with ServedSimulator(world, work_dir, "--latency-ms", str(LATENCY_MS)) as sim, postgres() as pg:
        if pg is None:
            return [{"benchmark": workload.name, "met": False,
                     "error": "PostgreSQL is not installed here"}
                    for workload in (FIRE_ONLY, CI_APPLY)]  # fmt: skip
        specs = work_dir / "specs"
        specs.mkdir()
        for number in _numbers():
            (specs / f"env{number}.yaml").write_text(
                simple_spec(number, sim.url, RUNS_PER_ENVIRONMENT)
            )
        return [_measure(work_dir, sim, pg, workload) for workload in (FIRE_ONLY, CI_APPLY)]


def _measure(work_dir: Path, sim: ServedSimulator, pg: PgServer, workload: Workload) -> Figures:
    def apply(label: str, state: Callable[[int], str]) -> Callable[[int], _Applied]:
        return lambda n: _apply(work_dir, workload, n, state(n), label)

    sim.reset()
    alone_url = _made_state(pg)
    alone = [apply("alone", lambda _: alone_url)(n) for n in _numbers()]
    sim.reset()
    together_url = _made_state(pg)
    together_db = together_url.rsplit("/", 1)[1]
    log_before = len(pg.log())
    deadlocks_before = _deadlocks(pg, together_db)
    together = _at_once(apply("together", lambda _: together_url))
    lock_waits = _lock_waits(pg.log()[log_before:])
    deadlocks = _deadlocks(pg, together_db) - deadlocks_before
    serials = _serials(pg, together_db)
    sim.reset()
    separate = _at_once(apply("separate", lambda n: str(work_dir / f"{workload.name}-{n}.db")))
    created = len(sim.runs())
    measured = _Measured(alone, together, separate, lock_waits, deadlocks, serials, created)
    return _figures(workload, measured)


def _numbers() -> range:
    return range(1, ENVIRONMENTS + 1)


_Applied = tuple[Finished, dict[str, Any]]


def _apply(work_dir: Path, workload: Workload, number: int, state: str, label: str) -> _Applied:
    argv = [
        *RUNNER,
        "apply",
        f"specs/env{number}.yaml",
        "--auto-approve",
        "--max-concurrent",
        str(MAX_CONCURRENT),
        *workload.options,
        "--format",
        "json",
        "--state",
        state,
    ]
    name = f"{workload.name}-{label}-{number}"
    finished = run_measured(argv, cwd=work_dir, env=runner_env(), out_dir=work_dir, name=name)
    if finished.code != 0:
        raise RuntimeError(
            f"apply of env{number} exited {finished.code}: {finished.stderr[-2000:]}"
        )
    return finished, apply_document(finished.stdout)


def _at_once(apply: Callable[[int], _Applied]) -> list[_Applied]:
    """The ten applies started together (each as soon as all ten threads are ready)."""
    ready = threading.Barrier(ENVIRONMENTS)

    def started(number: int) -> _Applied:
        ready.wait()
        return apply(number)

    with ThreadPoolExecutor(ENVIRONMENTS) as pool:
        return list(pool.map(started, _numbers()))


def _made_state(pg: PgServer) -> str:
    """A fresh database holding an empty state, as a team's is after its first apply:
    the one-time creation of the schema is not what is measured."""
    url = pg.url(pg.new_database())
    open_state(url).close()
    return url


def _lock_waits(log: str) -> dict[str, int]:
    """The statements that waited over 10 ms for a lock, and how often."""
    waits: Counter[str] = Counter()
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if "still waiting for" in line:
            statement = next(
                (later for later in lines[index + 1 : index + 4] if "STATEMENT:" in later), ""
            )
            waits[" ".join(statement.partition("STATEMENT:")[2].split())[:100]] += 1
    return dict(waits)


def _deadlocks(pg: PgServer, database: str) -> int:
    with pg.admin() as admin:
        row = admin.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [database]
        ).fetchone()
    return int(row[0]) if row else 0


def _serials(pg: PgServer, database: str) -> tuple[int, int]:
    """Runs in the journal, and distinct serials within each environment among their
    last writes."""
    with pg.admin(database) as admin:
        row = admin.execute(
            "SELECT count(*), count(DISTINCT (environment, changed_serial)) FROM runner.runs"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _fire_phase(document: dict[str, Any]) -> float:
    return parse_time(document["finishedAt"]) - parse_time(document["startedAt"])


@dataclass(frozen=True)
class _Measured:
    alone: list[_Applied]
    together: list[_Applied]
    separate: list[_Applied]
    lock_waits: dict[str, int]
    deadlocks: int
    serials: tuple[int, int]
    created: int


def _figures(workload: Workload, measured: _Measured) -> Figures:
    alone, together, separate = measured.alone, measured.together, measured.separate
    walls = [ratio(t.seconds, a.seconds) for (a, _), (t, _) in zip(alone, together, strict=True)]
    phases = [
        ratio(_fire_phase(t), _fire_phase(a))
        for (_, a), (_, t) in zip(alone, together, strict=True)
    ]
    against_sqlite = [
        ratio(t.seconds, s.seconds) for (t, _), (s, _) in zip(together, separate, strict=True)
    ]
    waited = sum("waiting for the lock" in t.stderr for t, _ in together)
    runs, distinct = measured.serials
    figures: Figures = {
        "workload": workload.what,
        "applies": ENVIRONMENTS,
        "runs_each": RUNS_PER_ENVIRONMENT,
        "state": "one PostgreSQL database on loopback, fsync on",
        "bound": "each apply alone on the same kind of state, one after the other",
        "alone_wall_seconds": [seconds(a.seconds) for a, _ in alone],
        "together_wall_seconds": [seconds(t.seconds) for t, _ in together],
        "wall_ratio_each": walls,
        "wall_ratio_max": max(walls),
        "wall_ratio_median": round(statistics.median(walls), 3),
        "fire_phase_ratio_each": phases,
        "fire_phase_ratio_max": max(phases),
        "separate_sqlite_wall_seconds": [seconds(s.seconds) for s, _ in separate],
        "wall_ratio_to_separate_sqlite_each": against_sqlite,
        "wall_ratio_to_separate_sqlite_max": max(against_sqlite),
        "wall_ratio_to_separate_sqlite_median": round(statistics.median(against_sqlite), 3),
        "applies_that_waited_for_a_lock": waited,
        "postgres_lock_waits_over_10ms": sum(measured.lock_waits.values()),
        "postgres_lock_waits_on": measured.lock_waits,
        "deadlocks": measured.deadlocks,
        "runs_in_journal": runs,
        "runs_sharing_a_serial": runs - distinct,
        "runs_created": measured.created,
    }
    return result(
        workload.name,
        figures,
        [
            at_most("wall_ratio_max", RATIO_TARGET),
            at_most("applies_that_waited_for_a_lock", 0),
            at_most("postgres_lock_waits_over_10ms", 0),
            at_most("deadlocks", 0),
            at_most("runs_sharing_a_serial", 0),
            at_least("runs_in_journal", ENVIRONMENTS * RUNS_PER_ENVIRONMENT),
        ],
    )
