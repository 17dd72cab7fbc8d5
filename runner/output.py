"""Every line the program prints goes through here, scrubbed of secrets."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from runner.secrets import scrub


def echo(text: str = "", *, file: TextIO | None = None, end: str = "\n") -> None:
    stream = file if file is not None else sys.stdout
    stream.write(scrub(text) + end)
    stream.flush()


def echo_err(text: str = "") -> None:
    echo(text, file=sys.stderr)


class ScrubbingFormatter(logging.Formatter):
    """Log records are text the program emits too: no secret in them, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(debug: bool) -> None:
    """Warnings (and, with RUNNER_DEBUG, everything) to stderr, scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("runner")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False
