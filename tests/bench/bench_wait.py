"""Benchmark 2: the cost of waiting.

300 runs in 3 environments, each run taking 3 s of simulated time (speed 1, so 3 s of
real time too), applied with ``--poll-interval 1`` by ``runner apply`` as a subprocess
against ``runner sim`` served on loopback.

* ``status_requests_per_run``: the requests that ask about run status
  (``GET /scheduler/runStatus``, ``GET /api/v1/runs``, ``GET /api/v1/runs/{id}``, from
  the simulator's counters) divided by the runs. The bound, measured in the same run,
  is what asking ``runStatus`` run by run at every poll would cost: for each run,
  ``ceil(its fired-to-ended time / poll interval)`` requests.
* ``notice_delay``: for each run, apply's ``endedAt`` (when it noticed, from its JSON)
  minus the simulator's ``endedAt`` (when the run ended, from ``/_sim/runs``), as a ratio
  to the poll interval. The judged figure is the worst run.

Run alone with ``python -m tests.bench.bench_wait``.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from tests.bench._common import (
    RUNNER,
    Figures,
    Finished,
    ServedSimulator,
    apply_document,
    at_least,
    at_most,
    byte_compile_package,
    emit,
    parse_time,
    percentile,
    ratio,
    result,
    run_measured,
    runner_env,
    seconds,
    simple_spec,
    world_yaml,
)

RUNS = 300
ENVIRONMENTS = 3
RUN_SECONDS = 3.0
POLL_INTERVAL = 1.0
REQUESTS_PER_RUN_TARGET = 1.0
NOTICE_RATIO_TARGET = 1.5
STATUS_ENDPOINTS = ("GET /scheduler/runStatus", "GET /api/v1/runs", "GET /api/v1/runs/{id}")


def run(work_dir: Path) -> list[Figures]:
    world = work_dir / "world.yaml"
    # The runs select one node (STG_ORDERS): a run takes exactly one node's time.
    world.write_text(world_yaml(ENVIRONMENTS, node_seconds=RUN_SECONDS))
    with ServedSimulator(world, work_dir) as sim:
        folder = work_dir / "specs"
        folder.mkdir()
        for number in range(1, ENVIRONMENTS + 1):
            text = simple_spec(number, sim.url, RUNS // ENVIRONMENTS)
            (folder / f"env{number}.yaml").write_text(text)
        apply = _apply(work_dir)
        counters = sim.counters()
        sim_runs = {run["runCounter"]: run for run in sim.runs()}
    document = apply_document(apply.stdout)
    return [_figures(apply, document, counters, sim_runs)]


def _apply(work_dir: Path) -> Finished:
    argv = [
        *RUNNER,
        "apply",
        "specs",
        "--auto-approve",
        "--poll-interval",
        str(POLL_INTERVAL),
        "--format",
        "json",
        "--state",
        str(work_dir / "state.db"),
    ]
    finished = run_measured(argv, cwd=work_dir, env=runner_env(), out_dir=work_dir, name="apply")
    if finished.code != 0:
        raise RuntimeError(f"apply exited {finished.code}: {finished.stderr[-2000:]}")
    return finished


def _figures(
    apply: Finished,
    document: dict[str, Any],
    counters: dict[str, Any],
    sim_runs: dict[int, dict[str, Any]],
) -> Figures:
    endpoints: dict[str, int] = counters["endpoints"]
    status_requests = sum(endpoints.get(name, 0) for name in STATUS_ENDPOINTS)
    delays: list[float] = []
    naive_requests = 0
    for run in document["runs"]:
        simulated = sim_runs.get(run["runCounter"])
        if simulated is None or run["endedAt"] is None or simulated["endedAt"] is None:
            continue
        ended = parse_time(simulated["endedAt"])
        delays.append(parse_time(run["endedAt"]) - ended)
        running = ended - parse_time(run["firedAt"])
        naive_requests += max(1, math.ceil(running / POLL_INTERVAL))
    completed = sum(1 for run in document["runs"] if run["status"] == "completed")
    worst = max(delays, default=math.nan)
    figures: Figures = {
        "driver": "cli-subprocess",
        "runs": RUNS,
        "environments": ENVIRONMENTS,
        "run_seconds": RUN_SECONDS,
        "poll_interval": POLL_INTERVAL,
        "runs_completed": completed,
        "runs_measured": len(delays),
        "status_requests": {name: endpoints.get(name, 0) for name in STATUS_ENDPOINTS},
        "status_requests_per_run": round(status_requests / RUNS, 3),
        "bound": "runStatus for every run at every poll",
        "bound_requests_per_run": round(naive_requests / RUNS, 3),
        "ratio_to_bound": ratio(status_requests, naive_requests),
        "notice_delay_p50_seconds": seconds(percentile(delays, 0.5)),
        "notice_delay_p95_seconds": seconds(percentile(delays, 0.95)),
        "notice_delay_max_seconds": seconds(worst),
        "notice_delay_max_ratio": ratio(worst, POLL_INTERVAL),
        "wall_seconds": seconds(apply.seconds),
    }
    return result(
        "waiting_cost",
        figures,
        [
            at_most("status_requests_per_run", REQUESTS_PER_RUN_TARGET),
            at_most("notice_delay_max_ratio", NOTICE_RATIO_TARGET),
            at_least("runs_measured", RUNS),
        ],
    )


def main() -> None:
    byte_compile_package()
    with tempfile.TemporaryDirectory(prefix="bench-wait-") as folder:
        for line in run(Path(folder)):
            emit(line)


if __name__ == "__main__":
    main()
