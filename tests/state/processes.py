"""Starting a second runner process for the state tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import runner

CHILD = Path(__file__).with_name("_child.py")
PROJECT = Path(runner.__file__).resolve().parent.parent


def spawn(*arguments: str) -> subprocess.Popen[str]:
    environment = dict(os.environ, PYTHONPATH=str(PROJECT))
    return subprocess.Popen(
        [sys.executable, str(CHILD), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the child process exited early with {process.wait()}"
    return line.rstrip("\n")


def tell(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def finish(process: subprocess.Popen[str]) -> None:
    """Close the child's stdin and reap it."""
    if process.stdin is not None:
        process.stdin.close()
    if process.stdout is not None:
        process.stdout.close()
    process.wait(timeout=30)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid
