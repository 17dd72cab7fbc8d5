"""Every line the program prints goes through here, scrubbed of secrets."""

from __future__ import annotations

import sys
from typing import TextIO

from runner.secrets import scrub


def echo(text: str = "", *, file: TextIO | None = None, end: str = "\n") -> None:
    stream = file if file is not None else sys.stdout
    stream.write(scrub(text) + end)
    stream.flush()


def echo_err(text: str = "") -> None:
    echo(text, file=sys.stderr)
