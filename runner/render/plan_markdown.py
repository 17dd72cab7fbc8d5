"""The plan as a pull-request comment: the summary table first, details folded below.

A comment has a size limit (GitHub's is 65,536 characters; a job's step summary takes
1 MiB), so the comment is built in parts and, when too long, details are cut before
anything else: first the unchanged runs of the largest environments, then whole
environments' details, then the list of environments whose details were cut, then the
longest lists of warnings; last, rows of the summary table, environments with nothing to
review first. A cut that leaves environments' details out says so in a visible
``truncated: N environments not shown`` line, with where to see them.

A comment may start with a hidden marker naming its scope (:func:`plan_marker`), so that
a workflow step can find its earlier comment and update it rather than add another.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

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
#: A job's step summary: GitHub takes up to 1 MiB per step; a little is left for others.
SUMMARY_LIMIT_BYTES = 1_000_000
COMMENT_ELSEWHERE = "see the step summary (or run `runner plan` locally)"
SUMMARY_ELSEWHERE = "run `runner plan` locally or download the plan file"
# In a ``diff`` block GitHub colours lines starting with "+" green, "-" red and "!" orange;
# "~" has no colour there, so changed lines are marked "!" (as Terraform PR comments do).
_DIFF_MARKS = {"+": "+", "-": "-", "~": "!", "=": "="}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")
_LEGEND = (
    "`+` new · `!` changed · `-` removed · `=` unchanged. "
    "Apply fires new, changed and unchanged runs (only new and changed with `--changed-only`)."
)


def render_plan_markdown(
    plan: Plan,
    *,
    limit: int = DEFAULT_LIMIT,
    marker: str | None = None,
    elsewhere: str = COMMENT_ELSEWHERE,
) -> str:
    """The comment, at most ``limit`` characters, starting with ``marker`` when given.
    ``elsewhere`` says where to see what had to be cut."""
    return _Comment(plan, marker, elsewhere).fit(limit, len)


def render_plan_summary(plan: Plan, *, marker: str | None = None) -> str:
    """The same for a job's step summary: at most :data:`SUMMARY_LIMIT_BYTES` bytes of
    UTF-8, so that a large plan is shown in full there when its comment had to be cut."""
    comment = _Comment(plan, marker, SUMMARY_ELSEWHERE)
    return comment.fit(SUMMARY_LIMIT_BYTES, _utf8_length)


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def plan_marker(scope: Mapping[str, Sequence[str]]) -> str:
    """A hidden HTML comment naming what a plan covers, e.g.
    ``<!-- runner:plan path=specs env=prod -->``: the same scope always gives the same
    marker (values sorted, repeated ones once; keys with no value left out), and nothing
    in a value can end the comment early."""
    parts = ["runner:plan"]
    for key, values in scope.items():
        kept = sorted({_marker_value(v) for v in values})
        if kept:
            parts.append(f"{key}={','.join(kept)}")
    return f"<!-- {' '.join(parts)} -->"


def _marker_value(value: str) -> str:
    # Percent-encoded but for the characters a path or a glob reads well with; "--" is
    # cut in two so that no value can close the HTML comment.
    return quote(value, safe="/._*?[]@:+").replace("--", "-%2D")


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


#: How much of an environment a comment shows.
_FULL, _CHANGED_ONLY, _LISTED, _IN_TABLE, _LEFT_OUT = range(5)


@dataclass
class _Environment:
    """One environment's details, at the level of detail the comment can afford:
    everything, its unchanged runs hidden, its details cut to one line in a list, only
    its row in the summary table, or left out of the table too."""

    env: EnvironmentPlan
    level: int = _FULL
    _rendered: dict[int, str] = field(default_factory=dict)

    @property
    def cut_runs(self) -> int:
        c = counts_of([self.env])
        if self.level == _FULL:
            return 0
        return c.unchanged if self.level == _CHANGED_ONLY else c.to_fire + c.removed

    @property
    def quiet(self) -> bool:
        """Nothing to review: no change and no warning."""
        return not self.env.has_changes and next(self.env.all_warnings(), None) is None

    def can_hide_unchanged(self) -> bool:
        return self.level == _FULL and counts_of([self.env]).unchanged > 0

    def render(self) -> str:
        if self.level not in self._rendered:
            self._rendered[self.level] = self._render()
        return self._rendered[self.level]

    def row(self) -> str:
        if _IN_TABLE not in self._rendered:
            self._rendered[_IN_TABLE] = _row(self.env)
        return self._rendered[_IN_TABLE]

    def _render(self) -> str:
        if self.level >= _LISTED:
            return f"- {md_text(environment_summary(self.env))}"
        lines = environment_lines(
            self.env, show_nodes=False, hide_unchanged=self.level == _CHANGED_ONLY
        )
        return (
            f"<details><summary>{html.escape(environment_summary(self.env))}</summary>"
            f"\n\n{diff_block(lines)}\n\n</details>"
        )


class _Comment:
    def __init__(self, plan: Plan, marker: str | None, elsewhere: str) -> None:
        self.marker = marker
        self.elsewhere = elsewhere
        self.head = _head(plan)
        self.problems = _problem_items(plan)
        self.problems_kept = len(self.problems)
        self.environments = [_Environment(env) for env in plan.environments]

    def fit(self, limit: int, measure: Callable[[str], int]) -> str:
        text = self.render()
        if measure(text) > limit:
            while measure(text) > limit and self._cut_more(measure(text) - limit):
                text = self.render()
            text = self._refill(text, limit, measure)
        if measure(text) > limit:  # even the summary is too long: keep what fits of it
            trailer = "\n\n(cut: run `runner plan` locally for the rest)\n"
            room = max(0, limit - measure(trailer))
            kept = text[:room]
            while measure(kept) > room:  # a character may take more than one byte
                kept = kept[: len(kept) - (measure(kept) - room)]
            text = kept.rsplit("\n", 1)[0] + trailer
        return text

    def _cut_more(self, over: int) -> bool:
        """Make the next cuts, largest details first, enough of them to save about
        ``over`` characters; False when there is nothing left to cut."""
        by_size = sorted(
            (e for e in self.environments if e.level < _LISTED),
            key=lambda e: len(e.render()),
            reverse=True,
        )
        hideable = [e for e in by_size if e.can_hide_unchanged()]
        for level, candidates in ((_CHANGED_ONLY, hideable), (_LISTED, by_size)):
            for env in candidates:
                before = len(env.render())
                env.level = level
                over -= before - len(env.render())
                if over <= 0:
                    break
            if candidates:
                return True
        listed = [e for e in self.environments if e.level == _LISTED]
        if listed:  # the table above says the same: drop the list at once
            for env in listed:
                env.level = _IN_TABLE
            return True
        return (
            self._leave_out_rows(over, quiet_only=True)
            or self._cut_problems(over)
            or self._leave_out_rows(over, quiet_only=False)
        )

    def _refill(self, text: str, limit: int, measure: Callable[[str], int]) -> str:
        """Cuts are made in large steps: give back, in the plan's order (environments with
        something to review first), the details of environments that fit in what is left."""
        if measure(text) > limit:
            return text
        budget = limit - measure(text) - measure(_LEGEND) - 64  # the section's own lines
        cut = [e for e in self.environments if e.level in (_LISTED, _IN_TABLE)]
        restored: list[tuple[_Environment, int]] = []
        for env in sorted(cut, key=lambda e: e.quiet):
            before = env.level
            env.level = _CHANGED_ONLY
            cost = measure(env.render()) + 2
            if before == _LISTED:
                cost -= measure(self._listed_line(env)) + 1
            if cost > budget:
                env.level = before
                continue
            budget -= cost
            restored.append((env, before))
        if not restored:
            return text
        refilled = self.render()
        if measure(refilled) <= limit:
            return refilled
        for env, before in restored:  # an estimate was wrong: keep the cut as it was
            env.level = before
        return self.render()

    @staticmethod
    def _listed_line(env: _Environment) -> str:
        return f"- {md_text(environment_summary(env.env))}"

    def _leave_out_rows(self, over: int, *, quiet_only: bool) -> bool:
        """Leave rows out of the table, from the last one up: enough of them to save
        ``over`` characters, or at least one."""
        rows = [
            e
            for e in reversed(self.environments)
            if e.level == _IN_TABLE and (e.quiet or not quiet_only)
        ]
        for env in rows:
            env.level = _LEFT_OUT
            over -= len(env.row()) + 1
            if over <= 0:
                break
        return bool(rows)

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
        parts = [self.marker] if self.marker else []
        parts.append(self.head)
        shown_rows = [e.row() for e in self.environments if e.level < _LEFT_OUT]
        if shown_rows:
            parts.append(_table(shown_rows))
        not_shown = sum(1 for e in self.environments if e.level >= _LISTED)
        if not_shown:
            parts.append(self._truncated(not_shown))
        cut = sum(env.cut_runs for env in self.environments)
        if cut:
            parts.append(
                f"> [!NOTE]\n> Details of {plural(cut, 'run')} were cut to fit a comment; "
                "run `runner plan` locally or download the plan file."
            )
        if self.problems:
            parts.append(self._problems_section())
        if any(e.level < _IN_TABLE for e in self.environments):
            parts.append(self._details_section())
        return "\n\n".join(parts) + "\n"

    def _truncated(self, not_shown: int) -> str:
        left_out = sum(1 for e in self.environments if e.level == _LEFT_OUT)
        detail = (
            f"{plural(left_out, 'environment')} of them left out of the table too"
            if left_out
            else "their rows are in the table above"
        )
        return (
            f"> [!WARNING]\n> **truncated: {plural(not_shown, 'environment')} not shown, "
            f"{self.elsewhere}** ({detail}; their details did not fit)."
        )

    def _details_section(self) -> str:
        shown = [env.render() for env in self.environments if env.level < _LISTED]
        cut = [env.render() for env in self.environments if env.level == _LISTED]
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


_SUMMARY_HEADER = (
    "Environment",
    "To fire",
    "New",
    "Changed",
    "Unchanged",
    "Removed",
    "Warnings",
    "Coalesce",
)


def _table(rows: list[str]) -> str:
    """The summary table from rows already rendered by :func:`_row` (the fitting keeps them)."""
    return "\n".join([*md_table(_SUMMARY_HEADER, [], numeric=range(1, 7)), *rows])


def _row(env: EnvironmentPlan) -> str:
    return _table_line([str(cell) for cell in _row_cells(env)])


def _row_cells(env: EnvironmentPlan) -> list[object]:
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
