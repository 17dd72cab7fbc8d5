"""Commands the program tells a person to run, written so that they work as typed: each
argument shell-quoted (a run named ``it's`` or ``a b`` is one argument, ``*`` is not
expanded by the shell)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

__all__ = ["cancel_command", "runner_command"]


def runner_command(args: Iterable[str]) -> str:
    """``runner`` with ``args``, each quoted for a POSIX shell as needed."""
    return " ".join(["runner", *(shlex.quote(str(arg)) for arg in args)])


def cancel_command(identity: str) -> str:
    """How to cancel the run ``identity`` (``ENV/RUN``)."""
    return runner_command(["cancel", identity])
