"""Every line the program prints goes through here.

What the program prints is its own text, built from redacted values: it is written as
is, never edited (see :mod:`runner.secrets`). Text from outside reaches it only through
:func:`runner.secrets.foreign_text`. Log records are the exception, as libraries write
them too: a record found to hold a secret is withheld whole.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import TextIO

from runner.secrets import bounded, foreign_text, holds_secret, withheld

#: A traceback is kept whole up to this many characters.
TRACEBACK_LIMIT = 20_000


def echo(text: str = "", *, file: TextIO | None = None, end: str = "\n") -> None:
    stream = file if file is not None else sys.stdout
    stream.write(text + end)
    stream.flush()


def echo_err(text: str = "") -> None:
    echo(text, file=sys.stderr)


def traceback_text(error: BaseException) -> str:
    """The traceback of ``error``, fit to show: the frames are the program's own text,
    each exception's message is foreign text (a library may quote a value it was given)
    and is withheld whole if it holds a secret."""
    lines = _traceback_lines(traceback.TracebackException.from_exception(error))
    return bounded("".join(lines), TRACEBACK_LIMIT, one_line=False)


def _traceback_lines(trace: traceback.TracebackException) -> list[str]:
    lines: list[str] = []
    if trace.__cause__ is not None:
        lines += _traceback_lines(trace.__cause__)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif trace.__context__ is not None and not trace.__suppress_context__:
        lines += _traceback_lines(trace.__context__)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if trace.stack:
        lines.append("Traceback (most recent call last):\n")
        lines += trace.stack.format()
    kind = trace.exc_type.__name__ if trace.exc_type else "Exception"
    message = "".join(trace.format_exception_only()).rstrip()
    lines.append(foreign_text(message, context=f"The {kind}'s message", one_line=False) + "\n")
    return lines


class GuardedFormatter(logging.Formatter):
    """Log records are partly text from outside (a library's message, an exception):
    a record that holds a secret is withheld whole, and a traceback is foreign text."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if holds_secret(message):
            return f"{record.levelname} {record.name}: " + withheld("A log record")
        return message

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        error = ei[1]
        return traceback_text(error).rstrip() if error is not None else ""


def configure_logging(debug: bool) -> None:
    """Warnings (and, with RUNNER_DEBUG, everything) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(GuardedFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("runner")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False
