"""Options shared by several commands, the command line they were given, and the
question that ``--auto-approve`` skips."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import click

from runner.errors import RunnerError

F = TypeVar("F", bound=Callable[..., Any])


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """``--var name=value`` pairs as a dict; a pair without ``=`` is a usage error."""
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"'{pair}' is not name=value", param_hint="--var")
        variables[name.strip()] = value
    return variables


def spec_paths(func: F) -> F:
    return click.argument("paths", nargs=-1, type=click.Path(path_type=str))(func)


def var_option(func: F) -> F:
    """``--var NAME=VALUE`` and ``--var-file FILE`` (both repeatable). The command sees one
    ``variables`` tuple of ``NAME=VALUE`` pairs: the files' variables first, in the order
    the files were given, then ``--var``, so that the command line wins."""

    @functools.wraps(func)
    def with_files(*args: Any, **kwargs: Any) -> Any:
        files: tuple[str, ...] = kwargs.pop("var_files", ())
        kwargs["variables"] = (*_file_pairs(files), *kwargs.get("variables", ()))
        return func(*args, **kwargs)

    decorated = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        metavar="FILE",
        help="A YAML map of variables (NAME: VALUE); --var wins over it.",
    )(with_files)
    return cast(
        F,
        click.option(
            "--var",
            "variables",
            multiple=True,
            metavar="NAME=VALUE",
            help="A value for var('NAME') in templates (also RUNNER_VAR_NAME).",
        )(decorated),
    )


def _file_pairs(files: Sequence[str]) -> list[str]:
    from runner.spec import read_var_file

    pairs: list[str] = []
    for path in files:
        pairs.extend(f"{name}={value}" for name, value in read_var_file(path).items())
    return pairs


def filter_options(func: F) -> F:
    func = click.option(
        "--run",
        "runs",
        multiple=True,
        metavar="GLOB",
        help="Only runs whose name (or ENV/NAME) matches; repeatable.",
    )(func)
    return click.option(
        "--env",
        "environments",
        multiple=True,
        metavar="NAME",
        help="Only this environment; repeatable.",
    )(func)


def state_option(func: F) -> F:
    return click.option(
        "--state",
        metavar="PATH",
        help="The state database (default: $RUNNER_STATE or .runner/state.db).",
    )(func)


def plan_format_option(func: F) -> F:
    """``--format text|json|markdown``: the three views of a plan."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
    )(func)


def specs_option(purpose: str) -> Callable[[F], F]:
    """``--specs PATH`` (repeatable), for commands whose arguments name runs, not specs."""

    def decorate(func: F) -> F:
        return click.option(
            "--specs",
            "paths",
            multiple=True,
            metavar="PATH",
            help=f"A spec file or folder, {purpose} (default: specs/).",
        )(func)

    return decorate


def waiting_options(func: F) -> F:
    """``--no-wait``, ``--poll-interval``, ``--lock-timeout``, ``--deploy-wait`` and
    ``--lookup-window``: how apply and rerun wait."""
    func = click.option(
        "--deploy-wait",
        type=click.FloatRange(0, 86400),
        default=600.0,
        show_default=True,
        envvar="RUNNER_DEPLOY_WAIT",
        help="Seconds to wait for an environment Coalesce is deploying, initializing or "
        "deleting before firing in it; past that its runs are not fired (exit 4). 0: do not "
        "wait.",
    )(func)
    func = click.option(
        "--lookup-window",
        type=click.FloatRange(0, 86400),
        default=120.0,
        show_default=True,
        envvar="RUNNER_LOOKUP_WINDOW",
        help="Seconds to keep looking in Coalesce for a run whose startRun answer was lost "
        "(its run list may lag) before reporting it uncertain. It is never fired again "
        "on its own.",
    )(func)
    func = click.option(
        "--lock-timeout",
        type=click.FloatRange(0, 86400),
        default=0.0,
        help="Seconds to wait for another apply's lock on an environment.",
    )(func)
    func = click.option(
        "--poll-interval",
        type=click.FloatRange(0.01, 3600),
        default=10.0,
        show_default=True,
        help="Seconds between status polls (at least 1 against real Coalesce).",
    )(func)
    return click.option("--no-wait", is_flag=True, help="Return once the last batch is fired.")(
        func
    )


def command_argv() -> tuple[str, ...]:
    """The arguments runner was called with, for the journal: those given to
    ``runner.cli.run_cli``, which are not this process's command line when runner runs
    inside another program."""
    context = click.get_current_context(silent=True)
    given = context.find_root().obj if context is not None else None
    if isinstance(given, Mapping) and "argv" in given:
        return tuple(_shown_argument(str(arg)) for arg in given["argv"])
    return tuple(_shown_argument(arg) for arg in sys.argv[1:])


def _shown_argument(argument: str) -> str:
    """An argument as the journal keeps it: a state URL (``--state URL`` or
    ``--state=URL``) without its password or query, which may hold one."""
    from runner.state.location import is_postgres_url, shown_url

    option, sep, value = argument.partition("=")
    if sep and option.startswith("--") and is_postgres_url(value):
        return f"{option}={shown_url(value)}"
    return shown_url(argument) if is_postgres_url(argument) else argument


def confirm(
    command: str, question: str, *, auto_approve: bool, review: str, err: bool = False
) -> None:
    """Ask ``question`` before ``command`` fires anything, unless ``auto_approve``;
    anything but ``yes``, or no terminal to ask on, fires nothing."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise RunnerError(
            f"{command} asks for confirmation, and there is no terminal to ask on",
            hint=f"review {review}, then run again with --auto-approve",
        )
    answer = click.prompt(
        f"{question} Type 'yes' to go on", default="", show_default=False, err=err
    )
    if answer.strip() != "yes":
        raise RunnerError(f"{command} canceled: nothing was fired")
