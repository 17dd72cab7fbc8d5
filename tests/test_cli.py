"""The command line as a whole: help, exit codes, error handling, guarded logs."""

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


def test_a_log_record_holding_a_secret_is_withheld_whole(
    run_cli, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli("--help")  # configures logging
    Secret("LOG-CANARY-1234")
    logging.getLogger("runner.coalesce.client").warning("server said LOG-CANARY-1234")
    err = capsys.readouterr().err
    assert "A log record was withheld because it contained a credential" in err
    assert "LOG-CANARY-1234" not in err and "server said" not in err


def test_the_fast_help_is_the_help_click_would_print(run_cli) -> None:
    from runner.commands import top_level_help

    assert run_cli("--help").out == top_level_help()


def test_help_is_answered_without_importing_click() -> None:
    script = (
        "import sys\n"
        "sys.argv = ['runner', '--help']\n"
        "from runner.launch import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
        "print('click' in sys.modules, code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.stderr.strip() == "False 0"
    assert done.stdout.startswith("Usage: runner [OPTIONS] COMMAND [ARGS]...")
