"""The plan for a person at a terminal: per environment, per batch, each run marked
``+`` new, ``~`` changed, ``-`` removed or ``=`` unchanged, Terraform-style."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.render._lines import (
    Line,
    Tone,
    baseline_text,
    created_text,
    environment_lines,
    environment_summary,
    plan_summary,
    problems_summary,
)

if TYPE_CHECKING:
    from runner.plan.model import Plan

_RESET = "\x1b[0m"
# Plain SGR codes: enough for five colours, and no import cost for `runner --help`.
_STYLES = {
    Tone.HEADING: "\x1b[1m",
    Tone.NEW: "\x1b[32m",
    Tone.CHANGED: "\x1b[33m",
    Tone.REMOVED: "\x1b[31m",
    Tone.UNCHANGED: "\x1b[2m",
    Tone.NOTE: "\x1b[2m",
    Tone.WARNING: "\x1b[33m",
    Tone.ERROR: "\x1b[1;31m",
}
_GLYPHS = {Tone.WARNING: "\u26a0 ", Tone.ERROR: "\u2716 "}


def render_plan_text(plan: Plan, *, color: bool, show_nodes: bool = False) -> str:
    """The whole plan as text; ANSI colours only when ``color`` is true."""
    lines = [
        Line(f"Plan against {baseline_text(plan)}, made {created_text(plan)}", tone=Tone.HEADING)
    ]
    if plan.variables:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(plan.variables.items()))
        lines.append(Line(f"variables: {shown}", tone=Tone.NOTE))
    for env in plan.environments:
        lines.append(Line(""))
        lines.extend(environment_lines(env, show_nodes=show_nodes))
        lines.append(Line(environment_summary(env), tone=Tone.HEADING))
    lines.append(Line(""))
    lines.append(Line(plan_summary(plan), tone=Tone.HEADING))
    problems = problems_summary(plan)
    if problems:
        has_errors = any(w.fails for w in plan.warnings())
        lines.append(Line(problems, tone=Tone.ERROR if has_errors else Tone.WARNING))
    return "\n".join(text_line(line, color=color) for line in lines) + "\n"


def text_line(line: Line, *, color: bool) -> str:
    """One line with its mark in the indentation: depth 2 ``+ name`` is ``"  + name"``."""
    indent = "  " * line.depth
    if line.mark:
        indent = indent[:-2] + line.mark + " "
    plain = indent + line.text
    style = _STYLES.get(line.tone)
    if not color or style is None or not line.text:
        return plain
    return f"{style}{indent}{_GLYPHS.get(line.tone, '')}{line.text}{_RESET}"
