"""Views of plans: text for a terminal, JSON for programs, markdown for pull requests.

The core never imports this package; the command line calls it with a finished plan.
Importing it is cheap: the plan package is only read when a function needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.render.plan_json import render_plan_json
from runner.render.plan_markdown import plan_marker, render_plan_markdown, render_plan_summary
from runner.render.plan_text import render_plan_text

__all__ = [
    "plan_marker",
    "render_plan_json",
    "render_plan_markdown",
    "render_plan_summary",
    "render_plan_text",
    "use_color",
]


def use_color(stream: Any, *, environ: Mapping[str, str] | None = None) -> bool:
    """Colour for ``stream``, as :func:`runner.render.terminal.terminal_for` decides:
    on a terminal, unless ``NO_COLOR`` is set (https://no-color.org) or ``TERM`` is
    ``dumb``; ``FORCE_COLOR`` turns it on anywhere, e.g. in a CI log that renders ANSI
    codes."""
    from runner.render.terminal import terminal_for

    return terminal_for(stream, environ=environ).color
