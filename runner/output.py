"""Every line the program prints goes through here.

What the program prints is its own text, built from redacted values: it is written as
is, never edited (see :mod:`runner.secrets`). Text from outside reaches it only through
:func:`runner.secrets.foreign_text`. Log records are the exception, as libraries write
them too: a record found to hold a secret is withheld whole.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from typing import TextIO

from runner.secrets import bounded, foreign_text, holds_secret, withheld

#: The ``formatVersion`` of every JSON document runner writes: plan files and plans in
#: JSON, apply and rerun reports, status. They change together, so that a script reading
#: several of them checks one number.
FORMAT_VERSION = 1

#: A traceback is kept whole up to this many characters.
TRACEBACK_LIMIT = 20_000


_quiet = False


def set_quiet(quiet: bool) -> None:
    """``runner --quiet``: notes and progress are left out (see :func:`note`)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def note(text: str) -> None:
    """A line for a person about what happened (a file written, a count), on stderr;
    left out under ``--quiet``. Warnings and errors are never notes."""
    if not _quiet:
        echo_err(text)


class Discard(io.StringIO):
    """A stream that keeps nothing: where progress goes under ``--quiet``."""

    def write(self, text: str) -> int:
        return len(text)


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


#: Library loggers whose records may carry text from outside: httpx logs each answer's
#: status line, with the reason phrase the server chose.
#: (A logger's filter sees only the records logged on it, not on its children.)
GUARDED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


class WithholdSecrets(logging.Filter):
    """A record whose message holds a secret is withheld whole, for every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if holds_secret(record.getMessage()):
            record.msg, record.args = withheld("A log record"), ()
        return True


class GuardedFormatter(logging.Formatter):
    """A traceback in a log record is foreign text (exception messages in it)."""

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        error = ei[1]
        return traceback_text(error).rstrip() if error is not None else ""


def configure_logging(debug: bool) -> None:
    """Warnings (and, with RUNNER_DEBUG, everything) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(GuardedFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(WithholdSecrets())  # every record of runner's own loggers
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithholdSecrets) for f in logger.filters):
            logger.addFilter(WithholdSecrets())
    root = logging.getLogger("runner")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False
