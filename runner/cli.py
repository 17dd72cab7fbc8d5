"""The command line: a thin layer that parses arguments, calls the core and sets the exit code.

Each command lives in ``runner/commands/<name>.py`` as a click command named ``command``
and is imported only when it runs, so ``runner --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from runner.commands import COMMANDS, MODULES, SUMMARY
from runner.errors import RunnerError, SpecError
from runner.output import configure_logging, echo_err, set_quiet, traceback_text
from runner.secrets import foreign_text

EXIT_INTERRUPTED = 130


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"runner.commands.{MODULES.get(cmd_name, cmd_name)}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runner")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Only the output, warnings and errors: no progress or notes.",
)
def cli(quiet: bool) -> None:
    set_quiet(quiet)


cli.help = SUMMARY


def _debug() -> bool:
    return os.environ.get("RUNNER_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (the console script exits with it)."""
    code = run_cli(argv)
    sys.exit(code)


def run_cli(argv: list[str] | None = None) -> int:
    configure_logging(_debug())
    set_quiet(False)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # The commands find their own arguments in obj (the journal records them).
        result: Any = cli.main(
            args=args, prog_name="runner", standalone_mode=False, obj={"argv": tuple(args)}
        )
    except RunnerError as error:
        echo_err(f"error: {error}" if not _is_multiline(error) else str(error))
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return 1
    except click.exceptions.Abort:
        echo_err("Aborted.")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        echo_err("Interrupted.")
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug: say so, and how to see more
        # An exception's message and traceback are not ours (a library may quote a value
        # it was given): shown only through the gate for foreign text.
        if _debug():
            echo_err(traceback_text(error))
        said = foreign_text(str(error), context="Its message")
        echo_err(
            f"internal error: {type(error).__name__}: {said}\n"
            "This is a bug in runner. Run again with RUNNER_DEBUG=1 to see the traceback."
        )
        return 1
    return result if isinstance(result, int) else 0


def _is_multiline(error: RunnerError) -> bool:
    return isinstance(error, SpecError)
