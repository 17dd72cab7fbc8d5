"""The live table on a terminal: what a person watching an apply sees."""

from __future__ import annotations

import datetime as dt
import io
import re

from runner.apply.model import ApplyEvent, RunReport, RunState
from runner.render.live import LiveProgress
from runner.secrets import Secret, foreign_text

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _runs(count: int) -> list[RunReport]:
    return [RunReport("prod", "marts", f"run-{i:03d}") for i in range(count)]


def _frames(output: str) -> list[list[str]]:
    """Each drawing, as the lines a person sees (escape codes removed)."""
    frames = re.split(r"\x1b\[\d+F|\r", output)
    return [
        [ANSI.sub("", line) for line in frame.split("\n") if ANSI.sub("", line).strip()]
        for frame in frames
        if ANSI.sub("", frame).strip()
    ]


def _live(runs: list[RunReport], size: tuple[int, int] = (100, 40), color: bool = False):
    stream = io.StringIO()
    return LiveProgress(
        runs, stream, size=size, refresh=None, color=color, clock=lambda: NOW
    ), stream


def test_each_change_redraws_the_table_over_the_previous_one() -> None:
    runs = _runs(2)
    live, stream = _live(runs)
    runs[0].state, runs[0].run_counter = RunState.WAITING_TO_RUN, 4711
    runs[0].fired_at = NOW
    live(ApplyEvent("run", "prod", runs[0]))
    runs[0].state, runs[0].ended_at = RunState.FAILED, NOW + dt.timedelta(seconds=42)
    live(ApplyEvent("run", "prod", runs[0]))
    live.close()

    output = stream.getvalue()
    frames = _frames(output)
    assert frames[0][0].split() == [
        "environment", "batch", "run", "status", "elapsed", "runCounter", "link"
    ]  # fmt: skip
    assert frames[1][1].split() == ["prod", "marts", "run-000", "waitingToRun", "0s", "4711"]
    assert frames[-1][1].split() == ["prod", "marts", "run-000", "failed", "42s", "4711"]
    assert frames[-1][2].split() == ["prod", "marts", "run-001", "pending"]
    # every redraw goes back up over the 3 lines drawn before, and nothing is left below
    assert output.count("\x1b[3F") == len(frames) - 1
    assert output.endswith("\x1b[J\x1b[?25h")


def test_status_colors_unless_color_is_off() -> None:
    runs = _runs(1)
    runs[0].state = RunState.FAILED
    colored, colored_stream = _live(runs, color=True)
    plain, plain_stream = _live(runs, color=False)
    colored.close()
    plain.close()
    assert "\x1b[31mprod" in colored_stream.getvalue()  # failed runs are red
    assert "\x1b[31m" not in plain_stream.getvalue()


def test_more_runs_than_lines_shows_counts_and_the_runs_that_need_eyes() -> None:
    runs = _runs(200)
    for run in runs[:150]:
        run.state = RunState.COMPLETED
    runs[10].state = RunState.FAILED
    runs[190].state = RunState.RUNNING
    live, stream = _live(runs, size=(60, 12))
    live.close()

    last = _frames(stream.getvalue())[-1]
    assert len(last) <= 11  # the terminal's height minus one, so nothing scrolls
    assert all(len(line) <= 60 for line in last)
    assert last[0].startswith("200 runs (149 completed, 49 pending, 1 failed, 1 running)")
    # the failed and the running run make it in; the rest of the room goes in order
    shown = [line.split()[2] for line in last[2:]]
    assert shown == [f"run-{i:03d}" for i in range(7)] + ["run-010", "run-190"]


def test_the_reports_of_events_take_the_place_of_the_planned_runs() -> None:
    planned = _runs(2)
    live, stream = _live(planned)
    fired = RunReport("prod", "marts", "run-001", RunState.WAITING_TO_RUN, run_counter=7)
    live(ApplyEvent("run", "prod", fired))
    extra = RunReport("prod", "marts", "run-002", RunState.FIRING)
    live(ApplyEvent("run", "prod", extra))
    live.close()
    rows = [line.split()[2:4] for line in _frames(stream.getvalue())[-1][1:]]
    assert rows == [["run-000", "pending"], ["run-001", "waitingToRun"], ["run-002", "firing"]]


def test_the_last_notes_show_under_the_table() -> None:
    live, stream = _live(_runs(1))
    for i in range(8):
        live(ApplyEvent("note", "prod", message=f"note {i}"))
    live.close()
    last = _frames(stream.getvalue())[-1]
    assert last[-5:] == [f"prod: note {i}" for i in range(3, 8)]


def test_no_secret_reaches_the_terminal() -> None:
    canary = "CANARY-LIVE-8d1e"
    Secret(canary)
    said = foreign_text(f"bad password {canary}", context="Coalesce's error text")
    live, stream = _live(_runs(1))
    live(ApplyEvent("note", "prod", message=f"Coalesce said: {said}"))
    live.close()
    assert canary not in stream.getvalue()
    assert "withheld because it contained a credential" in stream.getvalue()


def test_server_text_cannot_break_the_drawing_or_drive_the_terminal() -> None:
    runs = _runs(1)
    live, stream = _live(runs, size=(40, 10))
    live(ApplyEvent("note", "prod", message="line one\nline two\r\x1b[2Jcleared?"))
    live.close()
    output = stream.getvalue()
    assert "\x1b[2J" not in output
    last = _frames(output)[-1]
    assert last[-1] == "prod: line one line two  [2Jcleared?"
    assert output.count("\x1b[3F") >= 1  # header, one run, one note: 3 lines to go up over


def test_wide_characters_are_measured_by_the_columns_they_take() -> None:
    runs = [RunReport("本番環境", "marts", "集計-" * 6)]
    live, stream = _live(runs, size=(40, 10))
    live.close()
    for line in _frames(stream.getvalue())[-1]:
        width = sum(2 if "\u3000" <= ch <= "\u9fff" else 1 for ch in line)
        assert width <= 40, line


def test_a_tiny_terminal_never_scrolls() -> None:
    live, stream = _live(_runs(30), size=(30, 4))
    for i in range(3):
        live(ApplyEvent("note", "prod", message=f"note {i}"))
    live.close()
    assert all(len(frame) <= 3 for frame in _frames(stream.getvalue()))


def test_a_short_secret_changes_nothing_on_the_terminal() -> None:
    """Cells are never edited: a secret that is also a word of the table (``run``,
    ``prod``) leaves the drawing as it is."""
    live, stream = _live(_runs(1))
    live.close()
    before = _frames(stream.getvalue())[-1]
    Secret("run")
    Secret("prod")
    live, stream = _live(_runs(1))
    live.close()
    assert _frames(stream.getvalue())[-1] == before


def test_a_terminal_that_went_away_does_not_stop_the_apply() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

    live = LiveProgress(_runs(1), Gone(), size=(80, 24), refresh=None, clock=lambda: NOW)
    live(ApplyEvent("note", "prod", message="still going"))
    live.close()  # nothing raised


def test_events_leave_the_drawing_to_the_background_thread() -> None:
    """The event loop that fires runs never waits on the terminal."""
    runs = _runs(1)
    stream = io.StringIO()
    live = LiveProgress(runs, stream, size=(80, 24), refresh=60, clock=lambda: NOW)
    drawn_at_start = stream.getvalue()
    runs[0].state = RunState.RUNNING
    live(ApplyEvent("run", "prod", runs[0]))
    assert stream.getvalue() == drawn_at_start  # the event itself draws nothing
    live.close()
    assert _frames(stream.getvalue())[-1][1].split()[3] == "running"


def test_the_cursor_comes_back_even_after_the_terminal_refused_a_drawing() -> None:
    class Flaky(io.StringIO):
        refuse = True

        def write(self, text: str) -> int:
            if self.refuse:
                self.refuse = False
                raise OSError(5, "Input/output error")
            return super().write(text)

    stream = Flaky()
    live = LiveProgress(_runs(1), stream, size=(80, 24), refresh=None, clock=lambda: NOW)
    live.close()
    assert stream.getvalue().endswith("\x1b[?25h")
