"""The plan as a pull-request comment: the summary table first, details folded below.

A comment has a size limit (GitHub's is 65,536 characters), so the comment is built in
parts and, when too long, details are cut before anything else: first the unchanged runs
of the largest environments, then whole environments' details, then the longest lists of
warnings. The title, the summary table and the errors stay.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runner.render._lines import (
    Line,
    baseline_text,
    counts_of,
    created_text,
    environment_lines,
    environment_summary,
    plan_summary,
    plural,
    refused_runs,
    status_text,
    warning_message,
)

if TYPE_CHECKING:
    from runner.plan.model import EnvironmentPlan, Plan, PlanWarning

DEFAULT_LIMIT = 60_000
# In a ``diff`` block GitHub colours lines starting with "+" green, "-" red and "!" orange;
# "~" has no colour there, so changed lines are marked "!" (as Terraform PR comments do).
_DIFF_MARKS = {"+": "+", "-": "-", "~": "!", "=": "="}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")
_LEGEND = (
    "`+` new · `!` changed · `-` removed · `=` unchanged. "
    "Apply fires new, changed and unchanged runs (only new and changed with `--changed-only`)."
)


def render_plan_markdown(plan: Plan, *, limit: int = DEFAULT_LIMIT) -> str:
    """The comment, at most ``limit`` characters."""
    comment = _Comment(plan)
    return comment.fit(limit)


def md_text(text: str) -> str:
    """User-supplied text for markdown prose or a table cell: nothing in it is markup."""
    text = " ".join(text.splitlines())
    text = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def md_code(text: str) -> str:
    """Inline code that survives backticks and pipes (a table cell ends at any ``|``)."""
    text = " ".join(text.splitlines()).replace("|", "\\|")
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def diff_block(lines: list[Line]) -> str:
    """Lines in a fenced ``diff`` block, each mark in the first column."""
    body = "\n".join(_diff_line(line) for line in lines)
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    return f"{fence}diff\n{body}\n{fence}"


def _diff_line(line: Line) -> str:
    indent = "  " * line.depth
    mark = _DIFF_MARKS.get(line.mark, " ")
    return f"{mark}{indent[1:]}{line.text}" if indent else f"{mark} {line.text}"


@dataclass
class _Environment:
    """One environment's details, at the level of detail the comment can afford."""

    env: EnvironmentPlan
    level: int = 0  # 0 everything, 1 unchanged runs hidden, 2 cut
    _rendered: dict[int, str] = field(default_factory=dict)

    @property
    def cut_runs(self) -> int:
        c = counts_of([self.env])
        return {0: 0, 1: c.unchanged, 2: c.to_fire + c.removed}[self.level]

    def can_hide_unchanged(self) -> bool:
        return self.level == 0 and counts_of([self.env]).unchanged > 0

    def render(self) -> str:
        if self.level not in self._rendered:
            self._rendered[self.level] = self._render()
        return self._rendered[self.level]

    def _render(self) -> str:
        if self.level == 2:
            return f"- {md_text(environment_summary(self.env))}"
        lines = environment_lines(self.env, show_nodes=False, hide_unchanged=self.level == 1)
        return (
            f"<details><summary>{html.escape(environment_summary(self.env))}</summary>"
            f"\n\n{diff_block(lines)}\n\n</details>"
        )


class _Comment:
    def __init__(self, plan: Plan) -> None:
        self.head = _head(plan)
        self.problems = _problem_items(plan)
        self.problems_kept = len(self.problems)
        self.environments = [_Environment(env) for env in plan.environments]

    def fit(self, limit: int) -> str:
        text = self.render()
        while len(text) > limit and self._cut_more(len(text) - limit):
            text = self.render()
        if len(text) > limit:  # even the summary is too long: keep what fits of it
            trailer = "\n\n(cut: run `runner plan` locally for the rest)\n"
            text = text[: max(0, limit - len(trailer))].rsplit("\n", 1)[0] + trailer
        return text

    def _cut_more(self, over: int) -> bool:
        """Make the next cut, largest details first; False when there is nothing left."""
        by_size = sorted(self.environments, key=lambda e: len(e.render()), reverse=True)
        for env in by_size:
            if env.can_hide_unchanged():
                env.level = 1
                return True
        for env in by_size:
            if env.level < 2:
                env.level = 2
                return True
        return self._cut_problems(over)

    def _cut_problems(self, over: int) -> bool:
        kept = self.problems_kept
        while kept > 0 and over > 0:
            kept -= 1
            over -= len(self.problems[kept]) + 1
        if kept == self.problems_kept:
            return False
        self.problems_kept = kept
        return True

    def render(self) -> str:
        parts = [self.head]
        cut = sum(env.cut_runs for env in self.environments)
        if cut:
            parts.append(
                f"> [!NOTE]\n> Details of {plural(cut, 'run')} were cut to fit a comment; "
                "run `runner plan` locally or download the plan file."
            )
        if self.problems:
            parts.append(self._problems_section())
        if self.environments:
            parts.append(self._details_section())
        return "\n\n".join(parts) + "\n"

    def _details_section(self) -> str:
        shown = [env.render() for env in self.environments if env.level < 2]
        cut = [env.render() for env in self.environments if env.level == 2]
        if cut:
            shown.append("Details cut to fit:\n\n" + "\n".join(cut))
        return "#### Details\n\n" + "\n\n".join([_LEGEND, *shown])

    def _problems_section(self) -> str:
        items = self.problems[: self.problems_kept]
        left = len(self.problems) - self.problems_kept
        if left:
            items.append(f"- … and {left} more (run `runner plan` locally to see them)")
        return "#### Errors and warnings\n\n" + "\n".join(items)


def _head(plan: Plan) -> str:
    c = counts_of(plan.environments)
    meta = (
        f"Compared with {md_text(baseline_text(plan))} · {plural(c.to_fire, 'run')} to fire · "
        f"made {md_text(created_text(plan))}"
    )
    if plan.variables:
        meta += " · variables: " + ", ".join(
            md_code(f"{k}={v}") for k, v in sorted(plan.variables.items())
        )
    parts = [f"### {md_text(plan_summary(plan))}", meta]
    refused = refused_runs(plan)
    if refused:
        parts.append(
            f"> [!CAUTION]\n> {plural(refused, 'run')} will be refused as written: "
            "see the errors below."
        )
    if plan.environments:
        parts.append(_table(plan))
    return "\n\n".join(parts)


def md_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Collection[int] = ()
) -> list[str]:
    """A markdown table, one line per row. Cells go in as given: text from a spec or from
    Coalesce is escaped with :func:`md_text` first. Columns in ``numeric`` align right."""
    rule = ["---:" if index in numeric else "---" for index in range(len(header))]
    return [
        _table_line(header),
        _table_line(rule),
        *(_table_line([str(cell) for cell in row]) for row in rows),
    ]


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(plan: Plan) -> str:
    header = ["Environment", "To fire", "New", "Changed", "Unchanged", "Removed", "Warnings"]
    rows = [_row(env) for env in plan.environments]
    return "\n".join(md_table([*header, "Coalesce"], rows, numeric=range(1, 7)))


def _row(env: EnvironmentPlan) -> list[object]:
    c = counts_of([env])
    warnings = str(c.warnings) + (f" (**{plural(c.errors, 'error')}**)" if c.errors else "")
    status = status_text(env) if env.path else "spec removed"
    return [
        md_text(env.name),
        c.to_fire,
        c.new,
        c.changed,
        c.unchanged,
        c.removed,
        warnings,
        md_text(status),
    ]


def _problem_items(plan: Plan) -> list[str]:
    """One list item per warning, errors first, each naming its environment or run."""
    warnings = list(plan.warnings())
    ordered = [w for w in warnings if w.fails] + [w for w in warnings if not w.fails]
    return [_problem_item(w) for w in ordered]


def _problem_item(warning: PlanWarning) -> str:
    where = f"{warning.environment}/{warning.run}" if warning.run else warning.environment
    label = "**error**" if warning.fails else "warning"
    return f"- {label} {md_code(where)}: {md_text(warning_message(warning))}"
