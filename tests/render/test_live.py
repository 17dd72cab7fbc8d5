"""The live table on a terminal: what a person watching an apply sees.

The output is played on a small terminal (tests/render/_screen.py), and the screen after
each drawing is what is checked: rows, their places, the lines taken, what is left over.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest

from runner.apply.model import ApplyEvent, RunReport, RunState
from runner.render.live import LiveProgress
from runner.secrets import Secret, foreign_text
from tests.render._screen import Screen, colour_codes

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
HEADER = ["environment", "batch", "run", "status", "elapsed", "runCounter", "link"]


def _runs(count: int) -> list[RunReport]:
    return [RunReport("prod", "marts", f"run-{i:03d}") for i in range(count)]


def _live(
    runs: list[RunReport], size: tuple[int, int] = (100, 40), color: bool = False
) -> tuple[LiveProgress, Screen]:
    screen = Screen()
    return LiveProgress(
        runs, screen, size=size, refresh=None, color=color, clock=lambda: NOW
    ), screen


def test_each_change_redraws_the_table_over_the_previous_one() -> None:
    runs = _runs(2)
    live, screen = _live(runs)
    assert not screen.cursor_visible  # hidden while the table is drawn
    runs[0].state, runs[0].run_counter = RunState.WAITING_TO_RUN, 4711
    runs[0].fired_at = NOW
    live(ApplyEvent("run", "prod", runs[0]))
    runs[0].state, runs[0].ended_at = RunState.FAILED, NOW + dt.timedelta(seconds=42)
    live(ApplyEvent("run", "prod", runs[0]))
    live.close()

    frames = screen.frames
    assert len(frames) == 3  # the first drawing, one per change (the last one kept)
    assert frames[0][0].split() == HEADER
    assert frames[1][1].split() == ["prod", "marts", "run-000", "waitingToRun", "0s", "4711"]
    assert frames[-1][1].split() == ["prod", "marts", "run-000", "failed", "42s", "4711"]
    assert frames[-1][2].split() == ["prod", "marts", "run-001", "pending"]
    # Every drawing takes the place of the one before: the screen only ever holds one
    # table, each row in its place, and nothing is left below.
    for frame in frames:
        assert len(frame) == 3
        assert [line.split()[2] for line in frame[1:]] == ["run-000", "run-001"]
    # The table stays on screen, what follows goes under it, and the cursor is back.
    assert screen.row == 3 and screen.col == 0
    assert screen.cursor_visible


def test_status_colors_unless_color_is_off() -> None:
    runs = _runs(1)
    runs[0].state = RunState.FAILED
    colored, colored_screen = _live(runs, color=True)
    plain, plain_screen = _live(runs, color=False)
    colored.close()
    plain.close()
    assert "\x1b[31mprod" in colored_screen.getvalue()  # failed runs are red
    assert "\x1b[1menvironment" in colored_screen.getvalue()  # the header is bold
    assert colour_codes(plain_screen.getvalue()) == []  # no colour, no bold
    assert colored_screen.shown() == plain_screen.shown()


def test_more_runs_than_lines_shows_counts_and_the_runs_that_need_eyes() -> None:
    runs = _runs(200)
    for run in runs[:150]:
        run.state = RunState.COMPLETED
    runs[10].state = RunState.FAILED
    runs[190].state = RunState.RUNNING
    live, screen = _live(runs, size=(60, 12))
    live.close()

    last = screen.frames[-1]
    assert len(last) <= 11  # the terminal's height minus one, so nothing scrolls
    assert all(len(line) <= 60 for line in last)
    assert last[0].startswith("200 runs (149 completed, 49 pending, 1 failed, 1 running)")
    # the failed and the running run make it in; the rest of the room goes in order
    shown = [line.split()[2] for line in last[2:]]
    assert shown == [f"run-{i:03d}" for i in range(7)] + ["run-010", "run-190"]


def test_the_columns_that_do_not_fit_are_cut_from_the_right() -> None:
    runs = _runs(1)
    runs[0].run_counter, runs[0].run_link = 4711, "https://app.example/runs/4711"
    live, screen = _live(runs, size=(50, 10))
    live.close()
    header, row = screen.frames[-1]
    assert header.split()[:4] == HEADER[:4]  # the names are whole
    assert row.split()[:4] == ["prod", "marts", "run-000", "pending"]
    assert header.endswith("…") and len(header) <= 50
    assert "https" not in row  # the link had no room


def test_the_reports_of_events_take_the_place_of_the_planned_runs() -> None:
    planned = _runs(2)
    live, screen = _live(planned)
    fired = RunReport("prod", "marts", "run-001", RunState.WAITING_TO_RUN, run_counter=7)
    live(ApplyEvent("run", "prod", fired))
    extra = RunReport("prod", "marts", "run-002", RunState.FIRING)
    live(ApplyEvent("run", "prod", extra))
    live.close()
    rows = [line.split()[2:4] for line in screen.frames[-1][1:]]
    assert rows == [["run-000", "pending"], ["run-001", "waitingToRun"], ["run-002", "firing"]]


def test_the_last_notes_show_under_the_table() -> None:
    live, screen = _live(_runs(1))
    for i in range(8):
        live(ApplyEvent("note", "prod", message=f"note {i}"))
    live.close()
    last = screen.frames[-1]
    assert last[-5:] == [f"prod: note {i}" for i in range(3, 8)]
    assert len(last) == 7  # header, the run, five notes


def test_no_secret_reaches_the_terminal() -> None:
    canary = "CANARY-LIVE-8d1e"
    Secret(canary)
    said = foreign_text(f"bad password {canary}", context="Coalesce's error text")
    live, screen = _live(_runs(1), size=(200, 40))
    live(ApplyEvent("note", "prod", message=f"Coalesce said: {said}"))
    live.close()
    assert canary not in screen.getvalue()
    assert "withheld because it contained a credential" in screen.getvalue()


def test_a_link_holding_a_secret_is_withheld_whole() -> None:
    """The link is the one cell Coalesce may give as it likes: it passes the gate."""
    canary = "CANARY-LINK-51c0a9"
    Secret(canary)
    runs = [RunReport("prod", "marts", "a", run_link=f"https://app.example/?t={canary}")]
    live, screen = _live(runs, size=(200, 10))
    live.close()
    assert canary not in screen.getvalue()
    assert screen.frames[-1][1].endswith("(withheld: it contained a credential)")


def test_server_text_cannot_break_the_drawing_or_drive_the_terminal() -> None:
    runs = _runs(1)
    live, screen = _live(runs, size=(40, 10))
    live(ApplyEvent("note", "prod", message="line one\nline two\r\x1b[2Jcleared?"))
    live.close()
    output = screen.getvalue()
    assert "\x1b[2J" not in output
    last = screen.frames[-1]
    assert last[-1] == "prod: line one line two  [2Jcleared?"
    assert len(last) == 3  # header, one run, one note: the newline made no line of its own


@pytest.mark.parametrize(
    "text",
    ["[bold red]boom[/]", "[link=https://evil.example]click[/link]", ":skull: [/] \\[x]"],
)
def test_server_text_is_shown_as_it_is_never_read_as_markup(text: str) -> None:
    runs = [RunReport("prod", "marts", text)]
    live, screen = _live(runs, size=(100, 10), color=True)
    live(ApplyEvent("note", "prod", message=text))
    live.close()
    last = screen.frames[-1]
    assert last[1].split()[2] == text.split()[0]
    assert last[-1] == f"prod: {text}"
    assert "\x1b]8;" not in screen.getvalue()  # no hyperlink was made
    assert "\x1b[1;31m" not in screen.getvalue()  # nor a style (the run is pending)


def test_wide_characters_are_measured_by_the_columns_they_take() -> None:
    runs = [RunReport("本番環境", "marts", "集計-" * 6)]
    live, screen = _live(runs, size=(40, 10))
    live.close()
    last = screen.frames[-1]
    assert last[1].startswith("本番環境")
    for line in last:
        width = sum(2 if "\u3000" <= ch <= "\u9fff" else 1 for ch in line)
        assert width <= 40, line


def test_a_tiny_terminal_never_scrolls() -> None:
    live, screen = _live(_runs(30), size=(30, 4))
    for i in range(3):
        live(ApplyEvent("note", "prod", message=f"note {i}"))
    live.close()
    assert all(len(frame) <= 3 for frame in screen.frames)


def test_a_short_secret_changes_nothing_on_the_terminal() -> None:
    """Cells are never edited: a secret that is also a word of the table (``run``,
    ``prod``) leaves the drawing as it is."""
    live, screen = _live(_runs(1))
    live.close()
    before = screen.frames[-1]
    Secret("run")
    Secret("prod")
    live, screen = _live(_runs(1))
    live.close()
    assert screen.frames[-1] == before


@pytest.mark.parametrize(
    "error",
    [OSError(5, "Input/output error"), BrokenPipeError(), ValueError("closed file")],
    ids=["eio", "broken-pipe", "closed"],
)
def test_a_terminal_that_went_away_does_not_stop_the_apply(error: Exception) -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise error

    live = LiveProgress(_runs(1), Gone(), size=(80, 24), refresh=None, clock=lambda: NOW)
    live(ApplyEvent("note", "prod", message="still going"))
    live.close()  # nothing raised, and rich did not end the process


@pytest.mark.parametrize("refused", [1, 2], ids=["one-write", "two-writes"])
def test_a_drawing_the_terminal_could_not_take_is_drawn_anew_below(refused: int) -> None:
    """A terminal full for now loses that drawing, and how much of it got out is not
    known: the next one starts on a line of its own rather than go up over lines that
    may not be there (and over what was on the screen before the table)."""

    class Full(Screen):
        full = 0

        def write(self, text: str) -> int:
            if self.full:
                self.full -= 1
                raise BlockingIOError(11, "Resource temporarily unavailable")
            return super().write(text)

    screen = Full()
    screen.write("the plan\n")
    runs = _runs(1)
    live = LiveProgress(runs, screen, size=(80, 24), refresh=None, clock=lambda: NOW)
    first = screen.shown()
    screen.full = refused
    runs[0].state = RunState.RUNNING
    live(ApplyEvent("run", "prod", runs[0]))  # lost
    runs[0].state = RunState.COMPLETED
    live(ApplyEvent("run", "prod", runs[0]))
    live.close()
    shown = screen.shown()
    assert shown[: len(first)] == first  # "the plan" and the first drawing are left alone
    assert [line.split()[3] for line in shown[len(first) + 1 :]] == ["completed"]
    assert screen.cursor_visible


def test_events_leave_the_drawing_to_the_background_thread() -> None:
    """The event loop that fires runs never waits on the terminal."""
    runs = _runs(1)
    screen = Screen()
    live = LiveProgress(runs, screen, size=(80, 24), refresh=60, clock=lambda: NOW)
    drawn_at_start = screen.getvalue()
    runs[0].state = RunState.RUNNING
    live(ApplyEvent("run", "prod", runs[0]))
    assert screen.getvalue() == drawn_at_start  # the event itself draws nothing
    live.close()
    assert screen.frames[-1][1].split()[3] == "running"


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
