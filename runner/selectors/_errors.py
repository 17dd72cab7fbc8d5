"""What parsing and linting a selector report, each pointing at a column of its text."""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import RunnerError


class SelectorError(RunnerError):
    """A selector that cannot be parsed.

    ``message`` says what is wrong and how to fix it, without the position; ``column``
    is the 1-based index of the offending character in ``text`` (one past the end for
    "the selector ends too early"). Callers that know where the selector sits in a file
    add the file position themselves.
    """

    def __init__(self, message: str, *, column: int, text: str = "") -> None:
        super().__init__(message)
        self.column = column
        self.text = text

    def __str__(self) -> str:
        return f"{self.message} (selector column {self.column})"


@dataclass(frozen=True)
class SelectorWarning:
    """Text Coalesce accepts but that probably does not do what was meant.

    ``column`` is 1-based, as in ``SelectorError``.
    """

    message: str
    column: int


class GraphError(RunnerError):
    """Nodes that cannot form a graph, such as two nodes with the same id."""
