"""Where apply's output goes: progress to stderr as it happens, the result to stdout;
a log that takes both streams into one reads in order, and --help says which is where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runner.sim import DEMO_TOKEN
from tests.apply._support import _child_environment, batch, run, write_spec


def test_help_says_which_stream_carries_progress_and_which_the_summary(run_cli) -> None:
    text = " ".join(run_cli("apply", "--help").out.split())
    assert "progress goes to stderr" in text
    assert "the summary and what to do next go to stdout" in text
    assert "2>&1" in text


def test_both_streams_in_one_log_show_progress_before_the_summary(tmp_path: Path) -> None:
    write_spec(tmp_path / "specs", "dev", "1", "sim://", [batch("b", [run("stage")])])
    environment = _child_environment({"COALESCE_TOKEN": DEMO_TOKEN, "RUNNER_SIM_SPEED": "50"})

    done = subprocess.run(
        [sys.executable, "-m", "runner", "apply", "--auto-approve", "--poll-interval", "0.02"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one log, as `2>&1` or a CI job makes it
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    progress = [i for i, line in enumerate(lines) if line.endswith("dev/stage completed run 1")]
    summary = [i for i, line in enumerate(lines) if line.startswith("Apply 1: 1 completed.")]
    assert progress and summary, done.stdout
    assert progress[-1] < summary[0]
