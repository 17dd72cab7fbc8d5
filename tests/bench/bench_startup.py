"""Benchmark 4: start-up.

``runner --help`` and ``runner validate specs/`` (the repository's own specs), run as
subprocesses through the installed console script, best of several runs each, as a
ratio against ``python -c pass`` on the same interpreter, measured in the same run.

Run alone with ``python -m tests.bench.bench_startup``.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from tests.bench._common import (
    PYTHON,
    REPO,
    RUNNER,
    Figures,
    at_most,
    best_wall,
    byte_compile_package,
    emit,
    ratio,
    result,
    seconds,
)

REPEAT = 10
HELP_TARGET = 4.0
VALIDATE_TARGET = 8.0


def run(work_dir: Path) -> list[Figures]:
    del work_dir  # start-up is measured in the repository, on its own specs/
    check = subprocess.run(
        [*RUNNER, "validate", "specs/"], cwd=REPO, capture_output=True, text=True, check=False
    )
    bound = best_wall([PYTHON, "-c", "pass"], cwd=REPO, repeat=REPEAT)
    help_seconds = best_wall([*RUNNER, "--help"], cwd=REPO, repeat=REPEAT)
    validate_seconds = best_wall(
        [*RUNNER, "validate", "specs/"], cwd=REPO, repeat=REPEAT, check=check.returncode == 0
    )
    figures: Figures = {
        "driver": "cli-subprocess",
        "repeat": REPEAT,
        "bound": "python -c pass",
        "bound_seconds": seconds(bound),
        "help_seconds": seconds(help_seconds),
        "help_ratio": ratio(help_seconds, bound),
        "validate_seconds": seconds(validate_seconds),
        "validate_ratio": ratio(validate_seconds, bound),
        "validate_exit_code": check.returncode,
        "validate_summary": (check.stdout.strip().splitlines() or [""])[-1],
    }
    return [
        result(
            "startup",
            figures,
            [at_most("help_ratio", HELP_TARGET), at_most("validate_ratio", VALIDATE_TARGET)],
        )
    ]


def main() -> None:
    byte_compile_package()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        for line in run(Path(folder)):
            emit(line)


if __name__ == "__main__":
    main()
