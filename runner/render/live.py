"""The live table of an apply on a terminal, drawn with rich and redrawn in place.

One row per run (environment, batch, run, status, elapsed, runCounter, link) and the
last few notes below. When there are more runs than the terminal has lines, a line of
counts comes first and the rows shown are those still going or gone wrong, then the
rest as room allows. Events only note what changed; a background thread draws (ten
times a second at most, twice a second when nothing changes, so that elapsed times
move), so a slow terminal never holds up the event loop that fires the runs.

Whether a table is drawn at all, and in colour, is :mod:`runner.render.terminal`'s to
say. Every cell is given to rich as a :class:`rich.text.Text` (never read as markup),
cleaned of control characters first, so that text from a server cannot break the count
of lines drawn or drive the terminal. Cells hold no secret: they are built from
redacted values, notes have passed runner.secrets' foreign_text gate on their way here,
and the link Coalesce gave, and each note, pass its foreign_name gate here too.

rich is imported when a table is made, never when this module is: ``runner --help``
and ``runner validate`` do without it.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO, cast

from runner.apply.model import ENDED, UNSUCCESSFUL, ApplyEvent, RunReport, RunState
from runner.render.terminal import console_for, terminal_for, terminal_size
from runner.secrets import foreign_name

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

__all__ = ["LiveProgress"]

COLUMNS = ("environment", "batch", "run", "status", "elapsed", "runCounter", "link")
NOTES_KEPT = 5
REFRESH_SECONDS = 0.1  # how soon a change shows
TICK_SECONDS = 0.5  # how often the elapsed times move when nothing changes
GAP = 2  # columns between two columns of the table

_STATE_COLOR = {
    RunState.COMPLETED: "green",
    RunState.FAILED: "red",
    RunState.CANCELED: "red",
    RunState.TIMEOUT: "red",
    RunState.SKIPPED: "yellow",
    RunState.NOT_STARTED: "red",
    RunState.RUNNING: "cyan",
    RunState.WAITING_TO_RUN: "cyan",
}
# Shown first when not every row fits: the runs still going, and those gone wrong.
_NEEDS_EYES = (frozenset(RunState) - ENDED - {RunState.PENDING}) | (
    UNSUCCESSFUL - {RunState.SKIPPED}
)


class LiveProgress:
    """A table redrawn in place on ``stream`` (stderr by default). ``size`` fixes the
    terminal's (columns, lines), ``refresh`` the redraw interval (``None``: drawn at once
    on each event, with no thread), ``color`` overrides the terminal policy's answer
    and ``clock`` the time, for tests. Made only where the policy allows a live table
    (see :func:`runner.render.apply_output.progress_for`): it always redraws."""

    def __init__(
        self,
        runs: Sequence[RunReport],
        stream: TextIO | None = None,
        *,
        size: tuple[int, int] | None = None,
        refresh: float | None = REFRESH_SECONDS,
        color: bool | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from rich.live import Live

        self._clock = clock
        # By identity: the runs planned at the start are replaced, in place, by the
        # reports the events carry.
        self._runs = {run.identity: run for run in runs}
        self._notes: list[str] = []
        self._links: dict[str, str] = {}  # the link as given: as it may be shown
        self._size = size
        self._terminal = _Guarded(stream or sys.stderr)
        policy = replace(terminal_for(self._terminal, environ=environ), live=True)
        if color is not None:
            policy = replace(policy, color=color)
        self._console = console_for(
            cast("TextIO", self._terminal), terminal=policy, size=self._current_size()
        )
        self._live = Live(
            console=self._console,
            auto_refresh=False,  # drawn by the thread below, which knows what changed
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closed = threading.Event()
        self._live.start()  # hides the cursor
        self._draw()
        self._ticker: threading.Thread | None = None
        if refresh is not None:
            self._ticker = threading.Thread(
                target=self._tick, args=(refresh,), name="live-progress", daemon=True
            )
            self._ticker.start()

    def __call__(self, event: ApplyEvent) -> None:
        if event.kind == "note" and event.message:
            note = _clean(foreign_name(f"{event.environment}: {event.message}") or "")
            self._notes = [*self._notes, note][-NOTES_KEPT:]
        if event.run is not None:
            self._runs[event.run.identity] = event.run
        if self._ticker is None:
            self._draw()
        else:
            self._changed.set()

    def close(self) -> None:
        """Draw the final table and give the terminal back (the table stays on screen)."""
        self._closed.set()
        try:
            if self._ticker is not None:
                self._ticker.join()
            with self._lock:
                self._start_below_if_lost()
                self._live.update(self._drawing(), refresh=False)
        finally:
            with self._lock:
                try:
                    self._live.stop()  # draws it, a newline under it, and the cursor back
                finally:
                    if self._terminal.broken:  # the cursor comes back whatever happened
                        self._terminal.broken = False
                        self._console.show_cursor(True)

    def _tick(self, refresh: float) -> None:
        since_drawn = 0.0
        while not self._closed.wait(refresh):
            since_drawn += refresh
            if self._changed.is_set() or since_drawn >= TICK_SECONDS:
                self._changed.clear()
                since_drawn = 0.0
                self._draw()

    def _draw(self) -> None:
        with self._lock:
            if not self._terminal.broken and self._start_below_if_lost():
                self._live.update(self._drawing(), refresh=True)

    def _start_below_if_lost(self) -> bool:
        """After a drawing the terminal could not take, some of it may be on screen and
        some not: the next one starts on a line of its own, rather than go up over lines
        that may not be there. False while the terminal is still full."""
        if not self._terminal.lost:
            return True
        self._terminal.lost = False
        self._terminal.write("\n")
        if self._terminal.lost:
            return False
        self._live._live_render._shape = None  # nothing of rich's to go back up over
        return True

    def _current_size(self) -> tuple[int, int]:
        return self._size or terminal_size(self._terminal)

    def _drawing(self) -> RenderableType:
        """What is drawn now: at most ``lines - 1`` lines of the terminal (so that nothing
        scrolls), none wider than it."""
        width, height = self._current_size()
        self._console.size = (width, height)
        return self.table(self._clock(), width, height)

    def table(self, now: dt.datetime, width: int, height: int) -> RenderableType:
        """The counts (when not every run fits), the table, and the last notes, for a
        terminal of ``width`` columns and ``height`` lines."""
        from rich.console import Group
        from rich.table import Column, Table

        budget = max(height - 1, 1)
        notes = self._notes[-(budget - 3) :] if budget > 3 else []
        runs = list(self._runs.values())  # the event loop may add one meanwhile
        shown = _shown(runs, room=budget - len(notes))
        parts: list[RenderableType] = []
        if len(shown) != len(runs):
            parts.append(_line(_counts(runs, len(shown))))
        if len(parts) < budget:
            rows = [self._cells(run, now) for run in shown]
            widths = _widths([list(COLUMNS), *rows], width)
            table = Table(
                *(
                    Column(_line(name), width=w, no_wrap=True, overflow="ellipsis")
                    for name, w in zip(COLUMNS, widths, strict=False)
                ),
                box=None,
                show_edge=False,
                pad_edge=False,
                padding=(0, GAP // 2),
                header_style="bold",
            )
            for run, cells in zip(shown, rows, strict=True):
                table.add_row(*map(_line, cells[: len(widths)]), style=_STATE_COLOR.get(run.state))
            parts.append(table)
        parts += [_line(note) for note in notes]
        return Group(*parts)

    def _cells(self, run: RunReport, now: dt.datetime) -> list[str]:
        elapsed = run.elapsed(now)
        cells = [
            run.environment,
            run.batch,
            run.name,
            run.state.value,
            "" if elapsed is None else f"{elapsed:.0f}s",
            "" if run.run_counter is None else str(run.run_counter),
            self._link(run.run_link),
        ]
        return [_clean(cell) for cell in cells]

    def _link(self, link: str | None) -> str:
        """The link Coalesce gave, through the gate once (not on every drawing)."""
        if not link:
            return ""
        if link not in self._links:
            self._links[link] = foreign_name(link) or ""
        return self._links[link]


class _Guarded:
    """The terminal as rich sees it: a write it refuses never reaches rich (nor the
    apply). A terminal that is full for now (``BlockingIOError``) loses that drawing
    (``lost``); a closed or broken one (``broken``) is written to no more, and a broken
    pipe does not end the process, as rich would have it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self.broken = False
        self.lost = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
                self._stream.flush()
            except BlockingIOError:
                self.lost = True
            except (OSError, ValueError):
                self.broken = True
        return len(text)

    def flush(self) -> None:
        """Each write is flushed as it is made."""

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()


def _line(text: str) -> Text:
    """A cell or a line: rich's text as it is (no markup), cut with an ellipsis."""
    from rich.text import Text

    return Text(text, no_wrap=True, overflow="ellipsis")


def _widths(rows: list[list[str]], width: int) -> list[int]:
    """The width of each column that fits in ``width``: each as wide as its widest cell,
    from the left, the last cut (and the rest left out) when the terminal is narrow."""
    from rich.cells import cell_len

    widths: list[int] = []
    room = width
    for column in range(len(COLUMNS)):
        if room <= 0:
            break
        widths.append(min(max(cell_len(row[column]) for row in rows), room))
        room -= widths[-1] + GAP
    return widths


def _shown(runs: list[RunReport], room: int) -> list[RunReport]:
    """The runs that fit in ``room`` lines with the header, in their order: when not all
    do, those gone wrong or still going first, and a line of counts above."""
    if len(runs) + 1 <= room:
        return runs
    rows = max(room - 2, 0)
    first = sorted(runs, key=lambda run: run.state not in _NEEDS_EYES)  # stable
    chosen = {id(run) for run in first[:rows]}
    return [run for run in runs if id(run) in chosen]


def _counts(runs: list[RunReport], shown: int) -> str:
    counts = Counter(run.state.value for run in runs)
    states = ", ".join(f"{n} {state}" for state, n in counts.most_common())
    return f"{len(runs)} runs ({states}); {shown} shown"


def _clean(text: str) -> str:
    """No control characters: a newline or an escape code from a server's text would
    break the count of lines drawn, or drive the terminal."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
