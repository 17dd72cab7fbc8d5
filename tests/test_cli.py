"""The command line as a whole: help, exit codes, error handling, scrubbed logs."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from runner.secrets import Secret


def test_help_lists_every_command(run_cli) -> None:
    result = run_cli("--help")
    assert result.code == 0
    for name in (
        "validate",
        "plan",
        "apply",
        "status",
        "cancel",
        "rerun",
        "unlock",
        "sim",
        "schema",
    ):
        assert f"  {name} " in result.out


def test_python_dash_m_runner_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "version" in done.stdout


def test_usage_error_exits_1_with_a_message(run_cli) -> None:
    result = run_cli("plan", "--format", "yaml")
    assert result.code == 1
    assert "Invalid value for '--format'" in result.err
    assert "Traceback" not in result.err


def test_unknown_command_suggests(run_cli) -> None:
    result = run_cli("aply")
    assert result.code == 1
    assert "No such command 'aply'" in result.err


def test_log_records_are_scrubbed(run_cli, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli("--help")  # configures logging
    Secret("LOG-CANARY-1234")
    logging.getLogger("runner.coalesce.client").warning("server said LOG-CANARY-1234")
    err = capsys.readouterr().err
    assert "server said (secret)" in err
    assert "LOG-CANARY-1234" not in err
