"""``runner state copy FROM TO``: the whole history of one state, copied into another."""

from __future__ import annotations

import click

from runner.output import echo, echo_err


@click.group("state")
def command() -> None:
    """Work on a state as a whole (a SQLite file or a postgresql:// URL)."""


@command.command("copy", short_help="Copy a state's whole history into another, verified.")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@click.option(
    "--force",
    is_flag=True,
    help="Replace whatever TO holds (never under an apply holding a lock there).",
)
def copy(source: str, target: str, force: bool) -> int:
    """Copy every apply, run, plan and the serial from FROM into TO, verified.

    FROM and TO are each a SQLite state file or a postgresql:// URL. TO is created if
    need be, and must be empty unless --force. The copy is one transaction on TO: it is
    read back and compared with FROM before it commits, and on any difference or error
    TO is left as it was. Locks are not copied: they belong to the applies running
    against FROM.
    """
    from runner.render.copy_output import locks_not_copied_note, render_copy_text
    from runner.state.copy import copy_state

    result = copy_state(source, target, force=force)
    echo(render_copy_text(result), end="")
    note = locks_not_copied_note(result)
    if note:
        echo_err(note)
    return 0
