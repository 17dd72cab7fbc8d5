"""Benchmark 3: plan at scale.

200 spec files of 50 runs each (10,000 runs), written the way teams write them: a shared
``_base.yaml`` they extend, templated parameters, five ordered batches, selectors, jobs
and per-run overrides. The plan is made offline, in this process, with the library call
the CLI makes (``plan_specs`` with ``offline=True``, a fresh state file as the baseline),
once the modules are imported. The bound is loading the same files with PyYAML's C
loader (``yaml.CSafeLoader``), in the same run; both are the best of a few tries.

``runner plan --offline --format json`` is also timed as a subprocess (start-up and
rendering included), for information.

Run alone with ``python -m tests.bench.bench_plan``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.bench._common import (
    RUNNER,
    SECRETS,
    Figures,
    at_most,
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


def _plan(folder: Path, state: Path) -> int:
    from runner.plan import PlanRequest, plan_specs
    from runner.plan.service import open_state_reader

    reader = open_state_reader(state)
    try:
        made = plan_specs(
            PlanRequest(paths=(str(folder),), offline=True),
            state=reader,
            environ={**os.environ, **SECRETS},
        )
    finally:
        reader.close()
    return sum(1 for env in made.plan.environments for _ in env.runs())


def _load_with_libyaml(files: list[Path]) -> int:
    loaded = [yaml.load(path.read_text(), Loader=yaml.CSafeLoader) for path in files]
    return len(loaded)


def run(work_dir: Path) -> list[Figures]:
    folder = work_dir / "specs"
    files = write_specs(folder)
    state = work_dir / "state.db"
    planned = _plan(folder, state)  # imports every module the plan needs, once
    plan_seconds = _best(lambda: _plan(folder, state), PLAN_TRIES)
    yaml_seconds = _best(lambda: _load_with_libyaml(files), YAML_TRIES)
    argv = [*RUNNER, "plan", "specs", "--offline", "--format", "json", "--state", str(state)]
    cli = run_measured(argv, cwd=work_dir, env=runner_env(), out_dir=work_dir, name="plan")
    figures: Figures = {
        "driver": "in-process plan_specs(offline=True)",
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
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as folder:
        for line in run(Path(folder)):
            emit(line)


if __name__ == "__main__":
    main()
