"""The live table of an apply on a terminal, redrawn in place with plain ANSI codes.

One row per run (environment, batch, run, status, elapsed, runCounter, link) and the
last few notes below. When there are more runs than the terminal has lines, a line of
counts comes first and the rows shown are those still going or gone wrong, then the
rest as room allows. Events only note what changed; a background thread draws (ten
times a second at most, twice a second when nothing changes, so that elapsed times
move), so a slow terminal never holds up the event loop that fires the runs. Every cell
is cleaned of control characters before it is measured and cut (cells hold no secret:
they are built from redacted values, and foreign text has passed runner.secrets'
foreign_text gate).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from runner.apply.model import ENDED, UNSUCCESSFUL, ApplyEvent, RunReport, RunState

__all__ = ["LiveProgress"]

COLUMNS = ("environment", "batch", "run", "status", "elapsed", "runCounter", "link")
NOTES_KEPT = 5
REFRESH_SECONDS = 0.1  # how soon a change shows
TICK_SECONDS = 0.5  # how often the elapsed times move when nothing changes

_SGR = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1"}
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
_ERASE_LINE = "\x1b[K"
_ERASE_BELOW = "\x1b[J"
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"


class LiveProgress:
    """A table redrawn in place. ``size`` fixes the terminal's (columns, lines), ``refresh``
    the redraw interval (``None``: drawn at once on each event, with no thread) and
    ``clock`` the time, for tests."""

    def __init__(
        self,
        runs: Sequence[RunReport],
        stream: TextIO | None = None,
        *,
        size: tuple[int, int] | None = None,
        refresh: float | None = REFRESH_SECONDS,
        color: bool | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._clock = clock
        # By identity: the runs planned at the start are replaced, in place, by the
        # reports the events carry.
        self._runs = {run.identity: run for run in runs}
        self._notes: list[str] = []
        self._stream = stream or sys.stderr
        self._size = size
        self._color = not os.environ.get("NO_COLOR") if color is None else color
        self._drawn = 0  # lines of the previous drawing, to go back up over
        self._broken = False  # the terminal refused a write: stop drawing
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closed = threading.Event()
        self._write(_HIDE_CURSOR)
        self._draw()
        self._ticker: threading.Thread | None = None
        if refresh is not None:
            self._ticker = threading.Thread(
                target=self._tick, args=(refresh,), name="live-progress", daemon=True
            )
            self._ticker.start()

    def __call__(self, event: ApplyEvent) -> None:
        if event.kind == "note" and event.message:
            note = _clean(f"{event.environment}: {event.message}")
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
            self._draw()
        finally:
            self._broken = False  # the cursor is shown again whatever happened before
            self._write(_SHOW_CURSOR)

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
            width, height = self._size or _terminal_size(self._stream)
            lines = self.lines(self._clock(), width, height)
            # Back to the first line of the previous drawing, then over it.
            up = f"\x1b[{self._drawn}F" if self._drawn else "\r"
            body = "".join(f"{line}{_ERASE_LINE}\n" for line in lines)
            if self._write(up + body + _ERASE_BELOW):
                self._drawn = len(lines)

    def _write(self, text: str) -> bool:
        if self._broken:
            return False
        try:
            self._stream.write(text)
            self._stream.flush()
        except BlockingIOError:  # a terminal that is full for now: skip this drawing
            self._drawn = 0  # how much of it got out is unknown: draw anew below
            return False
        except (OSError, ValueError):  # a closed or broken terminal: apply goes on
            self._broken = True
            return False
        return True

    def lines(self, now: dt.datetime, width: int, height: int) -> list[str]:
        """The drawing: at most ``height - 1`` lines (so that nothing scrolls), each at
        most ``width`` columns wide."""
        budget = max(height - 1, 1)
        notes = self._notes[-(budget - 3) :] if budget > 3 else []
        runs = list(self._runs.values())  # the event loop may add one meanwhile
        shown = _shown(runs, room=budget - len(notes))
        header, *body = _table([list(COLUMNS), *(_cells(run, now) for run in shown)], width)
        lines = [] if len(shown) == len(runs) else [_cut(_counts(runs, len(shown)), width)]
        if len(lines) < budget:
            lines.append(self._paint(header, "bold"))
        for run, line in zip(shown, body, strict=True):
            lines.append(self._paint(line, _STATE_COLOR.get(run.state)))
        lines += [_cut(note, width) for note in notes]
        return lines[:budget]

    def _paint(self, line: str, color: str | None) -> str:
        if not self._color or color is None:
            return line
        return f"\x1b[{_SGR[color]}m{line}\x1b[0m"


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """The size of the terminal ``stream`` writes to (stdout may be a file meanwhile)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        size = os.terminal_size((0, 0))
    if size.columns <= 0 or size.lines <= 0:  # a terminal that does not say
        size = shutil.get_terminal_size()
    return size.columns, size.lines


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


def _cells(run: RunReport, now: dt.datetime) -> list[str]:
    elapsed = run.elapsed(now)
    cells = [
        run.environment,
        run.batch,
        run.name,
        run.state.value,
        "" if elapsed is None else f"{elapsed:.0f}s",
        "" if run.run_counter is None else str(run.run_counter),
        run.run_link or "",
    ]
    return [_clean(cell) for cell in cells]


def _clean(text: str) -> str:
    """No control characters: a newline or an escape code from a server's text would
    break the count of lines drawn, or drive the terminal."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _width(text: str) -> int:
    """Columns on a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(rows: list[list[str]], width: int) -> list[str]:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return [
        _cut(
            "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)),
            width,
        )
        for row in rows
    ]


def _cut(line: str, width: int) -> str:
    line = line.rstrip()
    if _width(line) <= width:
        return line
    kept, used = [], 0
    for ch in line:
        used += _width(ch)
        if used > width - 1:
            break
        kept.append(ch)
    return "".join(kept) + "…"
