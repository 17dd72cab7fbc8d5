"""Running ``runner sim`` as a real process for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

import pytest

STARTUP_LIMIT = 30.0  # seconds before a silent server process is killed
BANNER_END = "Press Ctrl-C to stop."


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    banner: list[str]


def serve(*args: str) -> Served:
    """Start ``runner sim --port 0 ARGS`` and wait for the line that gives its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(STARTUP_LIMIT, process.kill)
    watchdog.start()
    try:
        stdout = process.stdout
        assert stdout is not None
        first = stdout.readline()
        banner: list[str] = []
        while (line := stdout.readline()) and line.rstrip("\n") != BANNER_END:
            banner.append(line.rstrip("\n"))
    finally:
        watchdog.cancel()
    prefix = "runner sim listening on "
    if not first.startswith(prefix):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"runner sim did not start: {first!r}\n{err}")
    return Served(process, first[len(prefix) :].strip(), banner)


def stop(served: Served, how: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    """Stop the server; its exit code and what it printed to stderr."""
    served.process.send_signal(how)
    try:
        _, err = served.process.communicate(timeout=10)  # also closes the pipes
    except subprocess.TimeoutExpired:
        served.process.kill()
        _, err = served.process.communicate()
    return served.process.returncode, err
