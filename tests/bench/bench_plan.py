"""Benchmark 3: plan at scale.

200 spec files of 50 runs each (10,000 runs), written the way teams write them: a shared
``_base.yaml`` they extend, templated parameters, five ordered batches, selectors, jobs
and per-run overrides. The plan is made offline, in this process, with the library call
the CLI makes (``plan_specs`` with ``offline=True``, a fresh state file as the baseline),
timed in a fresh interpreter once the modules are imported (so no cache of an earlier
plan helps it). The bound is loading the same files with PyYAML's C loader
(``yaml.CSafeLoader``), in the same run. Both are the best of a few tries.

``runner plan --offline --format json`` is also timed as a subprocess (start-up and
rendering included), for information.

Run alone with ``python -m tests.bench.bench_plan``.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.bench._common import (
    PYTHON,
    RUNNER,
    Figures,
    at_most,
    byte_compile_package,
    emit,
    ratio,
    result,
    run_measured,
    runner_env,
    seconds,
    under,
)

FILES = 200
RUNS_PER_FILE = 50
BATCHES = 5
RATIO_TARGET = 5.0
SECONDS_TARGET = 3.0
PLAN_TRIES = 2
YAML_TRIES = 3

_BASE = """\
# Shared by every environment: the Coalesce host, the token, the run defaults.
version: 1
coalesce:
  url: https://app.coalescesoftware.io
  token: "{{ secret('COALESCE_TOKEN') }}"
defaults:
  parallelism: 16
  forceIgnoreEnvironmentStatus: false
  parameters:
    region: "{{ var('region', default='emea') }}"
    load_date: "{{ now().strftime('%Y-%m-%d') }}"
"""

_LOCATIONS = ("STG", "WORK", "DIM", "FACT", "MART")


def spec_text(number: int) -> str:
    lines = [
        f"# Environment {number}: {BATCHES} batches of {RUNS_PER_FILE // BATCHES} runs.",
        "extends: _base.yaml",
        f'environmentID: "{1000 + number}"',
        f"name: team-{number:03d}",
        "userCredentials:",
        "  snowflakeAuthType: Basic",
        "  snowflakeUsername: \"{{ var('snowflake_user', default='svc_runner') }}\"",
        "  snowflakePassword: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"",
        "  snowflakeWarehouse: TRANSFORMING",
        "  snowflakeRole: TRANSFORMER",
        "batches:",
    ]
    per_batch = RUNS_PER_FILE // BATCHES
    for batch, location in enumerate(_LOCATIONS[:BATCHES]):
        lines += [
            f"  - name: {location.lower()}",
            f"    maxConcurrent: {2 + batch}",
            f"    onFailure: {'continue' if batch % 2 else 'stop'}",
            "    runs:",
        ]
        for index in range(per_batch):
            lines += _run_lines(number, batch, index, location)
    return "\n".join(lines) + "\n"


def _run_lines(number: int, batch: int, index: int, location: str) -> list[str]:
    name = f"      - name: {location.lower()}-{index:02d}"
    kind = (number + batch + index) % 4
    if kind == 0:
        return [name, f'        jobID: "{(index % 9) + 1}"', "        parallelism: 8"]
    if kind == 1:
        return [
            name,
            f'        includeNodesSelector: "{{ location: {location} name: *_{index:02d}* }}+"',
            '        excludeNodesSelector: "{ nodeType: View }"',
        ]
    if kind == 2:
        return [
            name,
            f'        includeNodesSelector: "{{ location: {location} }}"',
            "        parameters:",
            f'          shard: "{index}"',
            "          mode: \"{{ var('mode', default='incremental') }}\"",
            "        timeout: 45m",
        ]
    return [
        name,
        f'        includeNodesSelector: "+{{ subgraph: \\"Team {number}\\" }}"',
        "        forceIgnoreEnvironmentStatus: true",
    ]


def write_specs(folder: Path) -> list[Path]:
    folder.mkdir()
    (folder / "_base.yaml").write_text(_BASE)
    for number in range(1, FILES + 1):
        (folder / f"team-{number:03d}.yaml").write_text(spec_text(number))
    return sorted(folder.iterdir())


def _best(work: Callable[[], object], tries: int) -> float:
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


# Runs in a fresh interpreter: import first, then time one plan (argv: folder, state).
_TIMED_PLAN = """
import sys, time
from runner.plan import PlanRequest, plan_specs
from runner.plan.service import open_state_reader
folder, state = sys.argv[1], sys.argv[2]
reader = open_state_reader(state)
start = time.perf_counter()
made = plan_specs(PlanRequest(paths=(folder,), offline=True), state=reader)
elapsed = time.perf_counter() - start
reader.close()
print(elapsed, sum(1 for env in made.plan.environments for _ in env.runs()))
"""


def _plan_in_fresh_process(folder: Path, state: Path) -> tuple[float, int]:
    done = subprocess.run(
        [PYTHON, "-c", _TIMED_PLAN, str(folder), str(state)],
        cwd=folder.parent,
        env=runner_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed, runs = done.stdout.split()
    return float(elapsed), int(runs)


def _load_with_libyaml(files: list[Path]) -> int:
    loaded = [yaml.load(path.read_text(), Loader=yaml.CSafeLoader) for path in files]
    return len(loaded)


def run(work_dir: Path) -> list[Figures]:
    folder = work_dir / "specs"
    files = write_specs(folder)
    state = work_dir / "state.db"
    tries = [_plan_in_fresh_process(folder, state) for _ in range(PLAN_TRIES)]
    plan_seconds, planned = min(tries)
    yaml_seconds = _best(lambda: _load_with_libyaml(files), YAML_TRIES)
    argv = [*RUNNER, "plan", "specs", "--offline", "--format", "json", "--state", str(state)]
    cli = run_measured(argv, cwd=work_dir, env=runner_env(), out_dir=work_dir, name="plan")
    figures: Figures = {
        "driver": "plan_specs(offline=True), timed after its imports in a fresh interpreter",
        "files": FILES,
        "runs": FILES * RUNS_PER_FILE,
        "runs_planned": planned,
        "plan_seconds": seconds(plan_seconds),
        "bound": "yaml.load(CSafeLoader) of the same files",
        "bound_seconds": seconds(yaml_seconds),
        "ratio_to_bound": ratio(plan_seconds, yaml_seconds),
        "cli_plan_json_seconds": seconds(cli.seconds),
        "cli_exit_code": cli.code,
        "cli_ratio_to_bound": ratio(cli.seconds, yaml_seconds),
    }
    return [
        result(
            "plan_at_scale",
            figures,
            [
                under("ratio_to_bound", RATIO_TARGET),
                under("plan_seconds", SECONDS_TARGET),
                at_most("cli_exit_code", 0),
            ],
        )
    ]


def main() -> None:
    byte_compile_package()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as folder:
        for line in run(Path(folder)):
            emit(line)


if __name__ == "__main__":
    main()
