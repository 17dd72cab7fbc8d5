"""The commands, one module each; this package's own import is kept free of click.

``runner --help`` is answered from :data:`COMMANDS` alone (see ``runner.launch``), so it
costs a Python start-up and little more.
"""

from __future__ import annotations

SUMMARY = "Declarative refresh runs for Coalesce: specs as code, reviewed plans, safe applies."

# name -> one-line help, shown by `runner --help` without importing the command.
COMMANDS: dict[str, str] = {
    "validate": "Check spec files; no network.",
    "plan": "Show which runs would fire and what changed.",
    "show": "Print a saved plan file in any format.",
    "apply": "Fire the runs in batches, wait for them and record what happened.",
    "status": "Show the last apply and the runs still in flight.",
    "cancel": "Cancel runs in flight.",
    "rerun": "Rerun failed runs, re-sending their parameters.",
    "unlock": "Release an environment's lock left by a dead apply.",
    "import": "Write a spec for an existing environment from its jobs and runs.",
    "state": "Copy a state's whole history into another state.",
    "sim": "Serve the local Coalesce simulator.",
    "schema": "Print the JSON Schema of a spec, for editors.",
}

#: The module of a command whose name is not a Python module name.
MODULES: dict[str, str] = {"import": "import_spec"}


def top_level_help() -> str:
    """The text of ``runner --help``, laid out as click lays it out (a test compares)."""
    import textwrap

    width = max(len(name) for name in COMMANDS) + 2
    summary = textwrap.fill(SUMMARY, width=78, initial_indent="  ", subsequent_indent="  ")
    commands = "".join(f"  {name:<{width}}{text}\n" for name, text in COMMANDS.items())
    return (
        "Usage: runner [OPTIONS] COMMAND [ARGS]...\n\n"
        f"{summary}\n\n"
        "Options:\n"
        "  --version    Show the version and exit.\n"
        "  -q, --quiet  Only the output, warnings and errors: no progress or notes.\n"
        "  -h, --help   Show this message and exit.\n\n"
        f"Commands:\n{commands}"
    )
