"""The one family of errors the program shows to a person.

    RunnerError                  anything the user can act on; exit code 1 unless said otherwise
    ├── SpecError                one or more problems in spec files, each with file:line:col
    ├── StalePlanError           a plan file no longer matches the specs or the state
    ├── LockHeldError            another apply holds an environment's lock
    │   └── EnvironmentLocked    ... with who holds it (runner.state.locks)
    ├── LockLostError            an apply's lock was taken over (runner.state.locks)
    ├── LockWaitInterrupted      Ctrl-C while waiting for a lock (runner.apply.executor)
    ├── CoalesceAPIError         Coalesce refused a request, or answered nonsense
    │   └── CoalesceUnreachable  ... or could not be reached (runner.coalesce.errors)
    ├── SendingStopped           a request after an interrupt closed the gate
    │                            (runner.coalesce.gate)
    ├── URLNotAllowedError       coalesce.url off the allow-list (runner.coalesce.urls)
    ├── UnresolvedJobError       a startRun whose job name no plan resolved: never sent
    │                            (runner.coalesce.requests)
    ├── SelectorError            a node selector that does not parse
    └── GraphError               a node graph that cannot be resolved (runner.selectors)

Everything else that escapes is a bug: the CLI prints its message through
``runner.secrets.foreign_text`` (withheld whole if it holds a secret), with a traceback
only under RUNNER_DEBUG=1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One finding in a spec file, printed as ``path:line:col: message``.

    ``line`` and ``col`` are 1-based, as editors show them; 0 means "the whole file".
    """

    path: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}: {prefix}{self.message}"


class RunnerError(Exception):
    """An error meant for a person: what is wrong, where, and how to fix it."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class SpecError(RunnerError):
    """Every problem found in the spec files, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StalePlanError(RunnerError):
    """The plan file was made from specs or state that have changed since."""


class LockHeldError(RunnerError):
    """Another apply holds the lock of an environment."""


def quoted(name: object) -> str:
    """A run, environment, batch or job name as messages show it: in single quotes, the
    way ``repr`` writes a string (run 'a', environment 'fin-prod'), so that a short name
    such as ``a`` or ``the`` never reads as a word of the sentence around it."""
    return repr(str(name))


def quoted_list(names: Iterable[object]) -> str:
    """``'a', 'b', 'c'``: several names, each :func:`quoted`."""
    return ", ".join(quoted(name) for name in names)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely meant to be: the closest by spelling, else one
    that differs only in case; None when nothing is close."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return close[0]
    return next((option for option in options if option.lower() == word.lower()), None)
