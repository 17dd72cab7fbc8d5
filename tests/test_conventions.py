"""The conventions of a command-line tool: its version, and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest


def _runner(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **environ},
        check=False,
        timeout=60,
    )


def test_version_prints_the_package_version() -> None:
    result = _runner("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"runner, version {metadata.version('runner')}"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "_runner_completion()"), ("zsh", "#compdef runner"), ("fish", "complete ")],
)
def test_a_completion_script_is_generated_for_each_shell(shell: str, marker: str) -> None:
    result = _runner(_RUNNER_COMPLETE=f"{shell}_source")
    assert result.returncode == 0
    assert marker in result.stdout


def test_completion_offers_the_commands() -> None:
    result = _runner(_RUNNER_COMPLETE="bash_complete", COMP_WORDS="runner pl", COMP_CWORD="1")
    assert result.stdout.split() == ["plain,plan"]  # bash reads "type,value" lines
