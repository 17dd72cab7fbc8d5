"""What a stream can be given: colour or not, a table redrawn in place or plain lines.

The one place that reads the terminal's variables; every view asks :func:`terminal_for`
(or draws on a :func:`console_for` console, which is built from its answer):

- ``NO_COLOR`` (non-empty, https://no-color.org): no colour, whatever else is set;
- ``FORCE_COLOR`` (non-empty, not ``0`` or ``false``): colour even into a pipe or a file,
  e.g. a CI log that renders ANSI codes;
- ``TERM=dumb``: no colour unless forced, and nothing redrawn (no cursor movement);
- not a terminal (a pipe, a file): plain lines, no colour unless forced;
- ``CI`` (non-empty): plain lines, since a CI log keeps every drawing.

The live table is drawn only on a real terminal, not a dumb one, outside CI. Importing
this module is cheap: rich is imported only when a console is made.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Terminal", "console_for", "terminal_for", "terminal_size"]

ColorSystem = Literal["standard", "256", "truecolor"]


@dataclass(frozen=True)
class Terminal:
    """What may be written to one stream."""

    #: ANSI colours and bold.
    color: bool
    #: A drawing redrawn in place (cursor movement, a hidden cursor).
    live: bool
    #: The colours the terminal shows (used only with ``color``).
    color_system: ColorSystem = "standard"


def terminal_for(stream: Any, *, environ: Mapping[str, str] | None = None) -> Terminal:
    """The policy for ``stream`` under ``environ`` (``os.environ`` when not given)."""
    environ = os.environ if environ is None else environ
    tty = _isatty(stream)
    dumb = environ.get("TERM") == "dumb"
    forced = environ.get("FORCE_COLOR", "") not in ("", "0", "false")
    color = not environ.get("NO_COLOR") and (forced or (tty and not dumb))
    live = tty and not dumb and not environ.get("CI")
    return Terminal(color=color, live=live, color_system=_color_system(environ))


def console_for(
    stream: Any,
    *,
    environ: Mapping[str, str] | None = None,
    terminal: Terminal | None = None,
    size: tuple[int, int] | None = None,
) -> Console:
    """A rich console writing to ``stream``, as :func:`terminal_for` says (or as
    ``terminal`` says, for a caller that has settled it). Nothing in the console reads
    the environment on its own: markup, emoji and highlighting are off (text from
    outside is shown as it is, never read as markup), and its size is ``size``, else the
    size of the terminal ``stream`` writes to, else rich's default for a file."""
    from rich.console import Console

    environ = os.environ if environ is None else environ
    terminal = terminal or terminal_for(stream, environ=environ)
    if size is None and _isatty(stream):
        size = terminal_size(stream)
    width, height = size if size is not None else (None, None)
    return Console(
        file=stream,
        force_terminal=terminal.live,
        force_interactive=terminal.live,
        force_jupyter=False,
        no_color=not terminal.color,
        color_system=terminal.color_system if terminal.color else None,
        width=width,
        height=height,
        markup=False,
        emoji=False,
        highlight=False,
        # What rich would read for itself (TERM, TTY_COMPATIBLE, FORCE_COLOR...) is
        # settled above; it is left only the size a pipe or a file may be given.
        _environ={name: environ[name] for name in ("COLUMNS", "LINES") if name in environ},
    )


def terminal_size(stream: Any) -> tuple[int, int]:
    """The (columns, lines) of the terminal ``stream`` writes to (stdout may be a file
    meanwhile); the usual guess when it does not say."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        size = os.terminal_size((0, 0))
    if size.columns <= 0 or size.lines <= 0:  # a terminal that does not say
        size = shutil.get_terminal_size()
    return size.columns, size.lines


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _color_system(environ: Mapping[str, str]) -> ColorSystem:
    if environ.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return "truecolor"
    if "256color" in environ.get("TERM", "").lower():
        return "256"
    return "standard"
