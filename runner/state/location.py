"""Where the state lives: ``--state``, else ``RUNNER_STATE``, else ``.runner/state.db``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_STATE_PATH = Path(".runner") / "state.db"
STATE_ENV_VAR = "RUNNER_STATE"


def state_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The state file to use; relative paths are relative to the current folder.

    An empty ``--state`` or ``RUNNER_STATE`` counts as not given (CI systems often set
    a variable to an empty string rather than leaving it out).
    """
    for given in (cli_value, environ.get(STATE_ENV_VAR)):
        if given:
            return Path(given).expanduser()
    return DEFAULT_STATE_PATH
