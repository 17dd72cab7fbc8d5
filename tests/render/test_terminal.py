"""One terminal policy: colour or not, a live table or plain lines, for any stream.

The policy is checked as a table of cases, the rich console built from it is checked to
decide nothing of its own, and the live table is run for real: a child process writes
an apply's progress to a pseudo-terminal (or a pipe), and what came out the other side
is read until the child is gone.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from runner.apply.model import RunReport
from runner.render import use_color
from runner.render.terminal import Terminal, console_for, terminal_for
from tests.render._screen import CURSOR_CONTROL, FakeStream, Screen, colour_codes

TTY, PIPED = True, False
FORCE = {"FORCE_COLOR": "1"}


@pytest.mark.parametrize(
    ("tty", "environ", "color", "live"),
    [
        (TTY, {}, True, True),
        (TTY, {"TERM": "xterm-256color"}, True, True),
        (PIPED, {}, False, False),
        (PIPED, FORCE, True, False),  # colour into a log that renders it, never redrawn
        (TTY, {"NO_COLOR": "1"}, False, True),  # no colour; the table still redrawn
        (TTY, {"NO_COLOR": ""}, True, True),  # only a non-empty NO_COLOR counts
        (TTY, {"NO_COLOR": "1", **FORCE}, False, True),  # NO_COLOR wins
        (PIPED, {"FORCE_COLOR": "0"}, False, False),
        (PIPED, {"FORCE_COLOR": "false"}, False, False),
        (TTY, {"TERM": "dumb"}, False, False),
        (TTY, {"TERM": "dumb", **FORCE}, True, False),  # forced colour, still no cursor
        (TTY, {"CI": "true"}, True, False),  # a CI log keeps every drawing: plain lines
        (TTY, {"CI": ""}, True, True),
        (PIPED, {"CI": "1", **FORCE}, True, False),
    ],
)
def test_the_policy(tty: bool, environ: dict[str, str], color: bool, live: bool) -> None:
    stream = FakeStream(tty)
    policy = terminal_for(stream, environ=environ)
    assert (policy.color, policy.live) == (color, live)
    assert use_color(stream, environ=environ) is color  # the older name says the same


def test_a_closed_or_odd_stream_is_not_a_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    for stream in (closed, object()):
        assert (terminal_for(stream, environ={}).color, terminal_for(stream, environ={}).live) == (
            False,
            False,
        )


@pytest.mark.parametrize(
    ("environ", "system"),
    [
        ({}, "standard"),
        ({"TERM": "xterm-256color"}, "256"),
        ({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, "truecolor"),
    ],
)
def test_the_colours_a_terminal_shows(environ: dict[str, str], system: str) -> None:
    assert terminal_for(FakeStream(TTY), environ=environ).color_system == system


@pytest.mark.parametrize(
    ("tty", "environ"),
    [(TTY, {}), (PIPED, {}), (PIPED, FORCE), (TTY, {"NO_COLOR": "1"}), (TTY, {"TERM": "dumb"})],
)
def test_the_console_is_built_from_the_policy_alone(
    tty: bool, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What rich would read for itself says the opposite, and is not listened to."""
    for name, value in {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TERM", "dumb")
    policy = terminal_for(FakeStream(tty), environ=environ)
    console = console_for(FakeStream(tty), environ=environ, size=(70, 20))
    assert console.is_terminal is policy.live
    assert console.is_interactive is policy.live
    assert console.is_dumb_terminal is False
    assert (console.color_system is not None) is policy.color
    assert (console.width, console.height) == (70, 20)


def test_the_console_prints_text_as_it_is() -> None:
    stream = FakeStream(PIPED)
    console_for(stream, environ=FORCE).print("[bold]x[/] :skull: 42 https://a.example")
    assert stream.getvalue() == "[bold]x[/] :skull: 42 https://a.example\n"


def test_a_caller_may_settle_the_policy() -> None:
    stream = FakeStream(PIPED)
    console = console_for(stream, environ={}, terminal=Terminal(color=True, live=True))
    assert console.is_terminal and console.color_system == "standard"


# -- the live table, for real ------------------------------------------------------------

CHILD = """
import sys
from runner.apply.model import ApplyEvent, RunReport, RunState
from runner.render.apply_output import progress_for

runs = [RunReport("prod", "marts", f"run-{i}") for i in range(3)]
progress = progress_for(runs)
for state in (RunState.RUNNING, RunState.COMPLETED):
    for run in runs:
        run.state = state
        progress(ApplyEvent("run", "prod", run))
progress(ApplyEvent("note", "prod", message="all done"))
progress.close()
sys.stderr.write(f"progress: {type(progress).__name__}\\n")
"""

#: What the parent's environment may hold that would change the child's answer.
TERMINAL_VARIABLES = ("CI", "NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "COLUMNS", "LINES")


def _child_environ(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARIABLES}
    return {**environ, "TERM": "xterm-256color", **extra}


def _on_a_terminal(environ: dict[str, str], columns: int = 100, lines: int = 24) -> str:
    """What the child writes to a pseudo-terminal of ``columns`` x ``lines``, read from
    the other side until it has exited."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        os.close(slave)  # the child's copy is the only one: the end of it ends the reading
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, "the child wrote nothing for a minute"
            try:
                chunk = os.read(master, 65536)
            except OSError as error:  # Linux: EIO once the last holder of the slave is gone
                assert error.errno == errno.EIO
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        assert child.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def _piped(environ: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=environ,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
        timeout=60,
    )
    return done.stderr


def test_a_terminal_gets_the_live_table_redrawn_in_place() -> None:
    output = _on_a_terminal(_child_environ())
    assert output.rstrip().endswith("progress: LiveProgress")
    assert "\x1b[?25l" in output and "\x1b[?25h" in output  # cursor hidden, then back
    assert re.search(r"\x1b\[1A", output) and "\x1b[2K" in output  # up over, erased
    assert "\x1b[32m" in output  # completed runs are green
    screen = Screen()
    screen.write(output)
    shown = screen.shown()
    # One table on screen, the rows in their places, redrawn over: not one per drawing.
    assert [line.split()[:4] for line in shown[1:4]] == [
        ["prod", "marts", f"run-{i}", "completed"] for i in range(3)
    ]
    assert shown[0].split()[:4] == ["environment", "batch", "run", "status"]
    assert shown[4:] == ["prod: all done", "progress: LiveProgress"]


def test_no_color_on_a_terminal_keeps_the_table_without_colour() -> None:
    """NO_COLOR is about colour only (https://no-color.org): the table is still redrawn."""
    output = _on_a_terminal(_child_environ(NO_COLOR="1"))
    assert output.rstrip().endswith("progress: LiveProgress")
    assert CURSOR_CONTROL.search(output)
    assert colour_codes(output) == []


@pytest.mark.parametrize(
    "extra", [{"TERM": "dumb"}, {"CI": "1"}, {"CI": "true", "FORCE_COLOR": "1"}], ids=str
)
def test_a_dumb_terminal_or_ci_gets_plain_lines(extra: dict[str, str]) -> None:
    output = _on_a_terminal(_child_environ(**extra))
    assert "\x1b" not in output  # no cursor movement, no colour (lines are never coloured)
    _assert_plain_lines(output)


def test_a_pipe_gets_plain_lines() -> None:
    output = _piped(_child_environ())
    assert "\x1b" not in output
    _assert_plain_lines(output)


def _assert_plain_lines(output: str) -> None:
    lines = output.replace("\r\n", "\n").splitlines()
    assert lines[-1] == "progress: LineProgress"
    # one line per change, in order, each whole
    said = [line.split(" ", 1)[1] for line in lines[:-1]]
    names = [RunReport("prod", "marts", f"run-{i}").identity for i in range(3)]
    assert said == [
        *(f"{name} running" for name in names),
        *(f"{name} completed" for name in names),
        "prod: all done",
    ]


# -- rich only when a table is drawn -----------------------------------------------------


def _imports_rich(script: str, cwd: Path) -> str:
    """Whether rich is loaded at the end of ``script`` (and wherever it prints so)."""
    done = subprocess.run(
        [sys.executable, "-c", script + "\nprint('rich' in sys.modules, file=sys.stderr)\n"],
        capture_output=True,
        text=True,
        env=_child_environ(),
        cwd=cwd,
        check=False,
        timeout=60,
    )
    return " ".join(line for line in done.stderr.split() if line in ("True", "False"))


def _run_main(*argv: str) -> str:
    return (
        "import sys\n"
        f"sys.argv = ['runner', *{list(argv)!r}]\n"
        "from runner.launch import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
    )


def test_help_does_not_import_rich(tmp_path: Path) -> None:
    assert _imports_rich(_run_main("--help"), tmp_path) == "False"


def test_validate_does_not_import_rich(tmp_path: Path) -> None:
    (tmp_path / "prod.yaml").write_text(
        "version: 1\ncoalesce: {url: 'sim://'}\nenvironmentID: 12\nruns:\n  - name: a\n"
        "    allNodes: true\n"
    )
    assert _imports_rich(_run_main("validate", "prod.yaml"), tmp_path) == "False"


def test_the_policy_imports_no_rich_and_a_live_table_does(tmp_path: Path) -> None:
    """The checks above can tell: deciding colour (as ``plan`` does) goes without rich,
    and the first live table brings it in. (httpx imports rich for its own command line
    when rich is installed, so ``apply``, which fires runs with httpx, has it anyway.)"""
    script = (
        "import io, sys\n"
        "from runner.render import use_color\n"
        "from runner.render.terminal import terminal_for\n"
        "use_color(sys.stdout), terminal_for(sys.stderr)\n"
        "print('rich' in sys.modules, file=sys.stderr)\n"
        "from runner.render.live import LiveProgress\n"
        "LiveProgress([], io.StringIO(), size=(80, 24), refresh=None).close()\n"
    )
    assert _imports_rich(script, tmp_path) == "False True"
