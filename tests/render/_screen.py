"""A small terminal for tests: plays what is written to it and keeps what a person would
see after each write. It knows the few control sequences a live table may use; any
other escape fails the test that wrote it."""

from __future__ import annotations

import io
import re

_TOKEN = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)")
_SGR = re.compile(r"\x1b\[[0-9;]*m")
#: Sequences that move the cursor or erase: a plain output has none of them.
CURSOR_CONTROL = re.compile(r"\x1b\[[0-9;]*[ABCDEFGHJK]|\x1b\[\?25[hl]")
ANY_ESCAPE = re.compile(r"\x1b")


class Screen(io.StringIO):
    """A terminal of unbounded size that records the screen after each write."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        self.cursor_visible = True
        self.frames: list[list[str]] = []

    def write(self, text: str) -> int:
        super().write(text)
        self.play(text)
        shown = self.shown()
        if shown and (not self.frames or self.frames[-1] != shown):
            self.frames.append(shown)
        return len(text)

    def shown(self) -> list[str]:
        """The lines on screen, without trailing blanks or blank lines at the end."""
        lines = ["".join(row).rstrip() for row in self.rows]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def play(self, text: str) -> None:
        for token in _TOKEN.split(text):
            if not token:
                continue
            if token == "\r":
                self.col = 0
            elif token == "\n":  # a terminal's ONLCR: down and back to the left
                self._line(self.row + 1)
                self.col = 0
            elif token.startswith("\x1b["):
                self._control(token[2:-1], token[-1])
            else:
                assert "\x1b" not in token, f"unexpected escape in {token!r}"
                for char in token:
                    self._put(char)

    def _line(self, row: int) -> None:
        self.row = max(row, 0)
        while len(self.rows) <= self.row:
            self.rows.append([])

    def _put(self, char: str) -> None:
        line = self.rows[self.row]
        line.extend(" " * (self.col + 1 - len(line)))
        line[self.col] = char
        self.col += 1

    def _control(self, params: str, final: str) -> None:
        if final in "hl":
            assert params == "?25", f"unexpected mode {params}{final}"
            self.cursor_visible = final == "h"
            return
        if final == "m":
            return  # colours and bold change nothing of the text
        n = int(params) if params.isdigit() else None
        line = self.rows[self.row]
        if final == "A":
            self._line(self.row - (n or 1))
        elif final == "B":
            self._line(self.row + (n or 1))
        elif final == "F":
            self._line(self.row - (n or 1))
            self.col = 0
        elif final == "G":
            self.col = (n or 1) - 1
        elif final == "K" and n in (None, 0):
            del line[self.col :]
        elif final == "K" and n == 2:
            line.clear()
        elif final == "J" and n in (None, 0):
            del line[self.col :]
            del self.rows[self.row + 1 :]
        else:
            raise AssertionError(f"unexpected control sequence ESC[{params}{final}")


def without_colour(text: str) -> str:
    return _SGR.sub("", text)


def colour_codes(text: str) -> list[str]:
    return _SGR.findall(text)


class FakeStream(io.StringIO):
    """A stream that says whether it is a terminal, and keeps what is written."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty
