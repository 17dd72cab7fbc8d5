"""A plan as lines with a change mark and a tone, shared by the text and markdown views.

The text view draws the mark in the indentation, Terraform-style (``  + stage-all``), and
colours by tone; the markdown view moves the mark to the first column of a ``diff`` block,
where GitHub colours it. Neither view decides what a plan says: this module does.

Nothing here imports ``runner.plan`` at run time (it pulls in the spec loader and Jinja2),
so importing the renderers stays cheap; actions are compared by their string values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.plan.model import (
        BatchPlan,
        EnvironmentPlan,
        FieldChange,
        Plan,
        PlannedJob,
        PlannedRun,
        PlanWarning,
    )

# The request fields a reviewer reads first, in this order, as (request section, key).
KEY_FIELDS = (
    ("runDetails", "jobID"),
    ("runDetails", "includeNodesSelector"),
    ("runDetails", "excludeNodesSelector"),
    ("runDetails", "parallelism"),
    ("runDetails", "forceIgnoreEnvironmentStatus"),
)
PARAMETERS_NOTE = (
    "note: in Coalesce a run's parameters replace the environment's parameter map "
    "(a parameter not listed for a run is not sent)"
)
REMOVED_TITLE = "removed: in the baseline, not in the specs (nothing is fired)"
# Load-time problems are worded "path:line:col: warning: message"; the view says "warning:" itself.
_PROBLEM_SEVERITY = re.compile(r"^(\S+:\d+:\d+): warning: ")


class Tone(StrEnum):
    PLAIN = "plain"
    HEADING = "heading"
    NEW = "new"
    CHANGED = "changed"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"


MARKS = {"new": "+", "changed": "~", "removed": "-", "unchanged": "=", "uncertain": "?"}
TONES = {
    "new": Tone.NEW,
    "changed": Tone.CHANGED,
    "removed": Tone.REMOVED,
    "unchanged": Tone.UNCHANGED,
    "uncertain": Tone.ERROR,
}


@dataclass(frozen=True)
class Line:
    """One line of a view. ``mark`` is "+", "~", "-", "=" or ""; marked lines have depth >= 1."""

    text: str
    depth: int = 0
    mark: str = ""
    tone: Tone = Tone.PLAIN


@dataclass(frozen=True)
class Counts:
    new: int
    changed: int
    unchanged: int
    removed: int
    warnings: int  # warnings that do not stop a run
    errors: int  # warnings marked ``fails``: the run will be refused
    uncertain: int = 0  # maybe created by an earlier apply: apply refuses until settled

    @property
    def to_fire(self) -> int:
        return self.new + self.changed + self.unchanged

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.removed or self.uncertain)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def counts_of(environments: Iterable[EnvironmentPlan]) -> Counts:
    new = changed = unchanged = removed = warnings = errors = uncertain = 0
    for env in environments:
        for run in env.runs():
            new += run.action == "new"
            changed += run.action == "changed"
            unchanged += run.action == "unchanged"
            uncertain += run.action == "uncertain"
        removed += len(env.removed)
        for warning in env.all_warnings():
            errors += warning.fails
            warnings += not warning.fails
    return Counts(new, changed, unchanged, removed, warnings, errors, uncertain)


def problems_text(counts: Counts) -> str:
    """``3 warnings`` or ``2 warnings, 1 error``."""
    text = plural(counts.warnings, "warning")
    if counts.errors:
        text += ", " + plural(counts.errors, "error")
    return text


def environment_summary(env: EnvironmentPlan) -> str:
    """``prod: 2 to fire (1 new, 1 changed, 0 unchanged), 1 removed, 3 warnings``."""
    c = counts_of([env])
    return (
        f"{env.name}: {c.to_fire} to fire ({c.new} new, {c.changed} changed, "
        f"{c.unchanged} unchanged), {c.removed} removed, {_uncertain_text(c)}"
        f"{problems_text(c)}"
    )


def _uncertain_text(counts: Counts) -> str:
    return f"{counts.uncertain} uncertain, " if counts.uncertain else ""


def plan_summary(plan: Plan) -> str:
    """The closing sentence: ``Plan: 3 new, ...`` or ``No changes. ...``."""
    c = counts_of(plan.environments)
    if c.has_changes:
        text = (
            f"Plan: {c.new} new, {c.changed} changed, {c.unchanged} unchanged, "
            f"{_uncertain_text(c)}{c.removed} removed."
        )
    elif c.unchanged:
        text = (
            f"No changes. Apply would fire the {plural(c.unchanged, 'unchanged run')} again "
            "(none with --changed-only)."
        )
    else:
        text = "No changes. Nothing to fire."
    return text


def problems_summary(plan: Plan) -> str:
    """What needs a look before applying, or "" when nothing does."""
    c = counts_of(plan.environments)
    refused = refused_runs(plan)
    parts = []
    if refused:
        parts.append(f"{plural(refused, 'run')} will be refused as written (see error: above)")
    if c.warnings:
        parts.append(plural(c.warnings, "warning"))
    return "; ".join(parts) + "." if parts else ""


def refused_runs(plan: Plan) -> int:
    return sum(1 for run in plan.runs() if any(w.fails for w in run.warnings))


def baseline_text(plan: Plan) -> str:
    if plan.baseline == "state":
        return f"the last applied state (serial {plan.state_serial})"
    if plan.baseline.startswith("git:"):
        return f"the specs at {plan.baseline.removeprefix('git:')}"
    return plan.baseline


def created_text(plan: Plan) -> str:
    return plan.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def value_text(value: Any) -> str:
    """A request value as a reviewer reads it: JSON, so strings are quoted and spaces show."""
    return _VALUE_JSON.encode(value)


# One encoder for every value: json.dumps with options builds a new one per call, which
# was most of the time it took to show a plan of a thousand runs.
_VALUE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def warning_message(warning: PlanWarning) -> str:
    return _PROBLEM_SEVERITY.sub(r"\1: ", warning.message)


def warning_line(warning: PlanWarning, depth: int) -> Line:
    if warning.fails:
        return Line(f"error: {warning_message(warning)}", depth, tone=Tone.ERROR)
    return Line(f"warning: {warning_message(warning)}", depth, tone=Tone.WARNING)


def status_text(env: EnvironmentPlan) -> str:
    if env.status is not None:
        commit = f", deployed commit {env.deployed_commit}" if env.deployed_commit else ""
        return env.status + commit
    if env.offline_reason:
        return f"not read ({env.offline_reason})"
    return "not read (offline)"


def environment_lines(
    env: EnvironmentPlan, *, show_nodes: bool, hide_unchanged: bool = False
) -> list[Line]:
    """Everything about one environment but its summary. ``hide_unchanged`` puts one line
    per batch in place of its unchanged runs (to make a long plan shorter)."""
    lines = [_environment_header(env)]
    if env.path:
        lines.append(Line(f"Coalesce status: {status_text(env)}", 1))
    if _sends_parameters(env):
        lines.append(Line(PARAMETERS_NOTE, 1, tone=Tone.NOTE))
    lines.extend(warning_line(w, 1) for w in env.warnings)
    for batch in env.batches:
        lines.append(Line(_batch_title(batch), 1, tone=Tone.HEADING))
        hidden = 0
        for run in batch.runs:
            if hide_unchanged and run.action == "unchanged":
                hidden += 1
                continue
            lines.extend(run_lines(run, online=env.status is not None, show_nodes=show_nodes))
        if hidden:
            lines.append(Line(f"{plural(hidden, 'unchanged run')} not shown", 3, "=", Tone.NOTE))
    if env.removed:
        lines.append(Line(REMOVED_TITLE, 1, tone=Tone.HEADING))
        for run in env.removed:
            lines.extend(run_lines(run, online=False, show_nodes=show_nodes))
    if not env.batches and not env.removed:
        lines.append(Line("no runs selected", 1, tone=Tone.NOTE))
    return lines


def _environment_header(env: EnvironmentPlan) -> Line:
    where = [f"environment {env.environment_id}"] if env.environment_id else []
    if env.url:
        where.append(env.url)
    where.append(env.path or "its spec is gone: every run is removed")
    return Line(f"{env.name} ({', '.join(where)})", tone=Tone.HEADING)


def _batch_title(batch: BatchPlan) -> str:
    settings = [f"onFailure: {batch.on_failure}"]
    if batch.max_concurrent is not None:
        settings.insert(0, f"maxConcurrent: {batch.max_concurrent}")
    return f"batch {batch.name} ({', '.join(settings)})"


def _sends_parameters(env: EnvironmentPlan) -> bool:
    return any(run.fires and run.request.get("parameters") for run in env.runs())


def run_lines(run: PlannedRun, *, online: bool, show_nodes: bool) -> list[Line]:
    """A run: its marked name, then fields, diff, selection and warnings beneath it."""
    action = str(run.action)
    mark, tone = MARKS[action], TONES[action]
    if action == "unchanged":
        lines = [Line(_compact_title(run), 3, mark, tone)]
    else:
        title = run.name if action != "removed" else f"{run.name} (batch {run.batch})"
        lines = [Line(title, 3, mark, tone)]
        lines.extend(_field_lines(run, mark, tone))
    lines.extend(_ignored_line(change) for change in run.ignored)
    lines.extend(_selection_lines(run, online=online, show_nodes=show_nodes))
    lines.extend(warning_line(w, 4) for w in run.warnings)
    return lines


def _compact_title(run: PlannedRun) -> str:
    selection = f", {plural(run.selection.count, 'node')}" if run.selection is not None else ""
    return f"{run.name} (unchanged{selection})"


def _field_lines(run: PlannedRun, mark: str, tone: Tone) -> Iterator[Line]:
    """New and removed runs: every key field, marked. Changed: the same fields, then the diff."""
    changed = {change.field for change in run.changes}
    marked = str(run.action) != "changed"
    job = job_text(run.job, _unresolved_because(run)) if run.job is not None else None
    if job is not None and run.job is not None and run.job.by_name:
        yield Line(job, 4, mark, tone) if marked else Line(job, 4)
    for name, value in key_fields(run.request):
        if name == "jobID" and run.job is not None:
            if run.job.by_name:
                continue  # shown as the job's line
            text = f"{name}: {value_text(value)}" + (f" ({job})" if job else "")
        else:
            text = f"{name}: {value_text(value)}"
        if marked:
            yield Line(text, 4, mark, tone)
        elif _full_name(name) not in changed:
            yield Line(text, 4)
    for change in run.changes:
        yield change_line(change)


def _unresolved_because(run: PlannedRun) -> str:
    if any(w.code == "unknown-job" for w in run.warnings):
        return "see the error below"
    return "the plan did not read Coalesce"


def job_text(job: PlannedJob, unresolved_because: str = "") -> str | None:
    """``job: "Nightly marts" (7)`` for a job the spec names; for a job given by ID,
    what Coalesce says of it (``job "Nightly marts", include "{ location: MART }"``);
    None when there is nothing to add to the ID."""
    if job.by_name:
        where = job.id if job.id is not None else f"not resolved: {unresolved_because}"
        return f"job: {value_text(job.name)} ({where})"
    facts = [f"job {value_text(job.name)}"] if job.name else []
    for which, selector in (("include", job.include_selector), ("exclude", job.exclude_selector)):
        if selector:
            facts.append(f"{which} {value_text(selector)}")
    return ", ".join(facts) or None


def key_fields(request: Any) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of the fields a reviewer reads first; parameters key by key."""
    for section, key in KEY_FIELDS:
        value = request.get(section, {}).get(key)
        if value is not None:
            yield key, value
    for key, value in sorted(dict(request.get("parameters") or {}).items()):
        yield f"parameters.{key}", value


def _full_name(name: str) -> str:
    return name if name.startswith("parameters.") else f"runDetails.{name}"


def _ignored_line(change: FieldChange) -> Line:
    """A change the spec expects (ignoreChanges): shown, unmarked, not counted."""
    before, after = value_text(change.before), value_text(change.after)
    return Line(f"{change.field}: {before} -> {after} (ignored: ignoreChanges)", 4)


def change_line(change: FieldChange) -> Line:
    if change.before is None:
        return Line(f"{change.field}: {value_text(change.after)}", 4, "+", Tone.NEW)
    if change.after is None:
        return Line(f"{change.field}: {value_text(change.before)}", 4, "-", Tone.REMOVED)
    return Line(
        f"{change.field}: {value_text(change.before)} -> {value_text(change.after)}",
        4,
        "~",
        Tone.CHANGED,
    )


def _selection_lines(run: PlannedRun, *, online: bool, show_nodes: bool) -> Iterator[Line]:
    selection = run.selection
    if selection is None:
        if online and run.fires and _job_decides(run):
            yield Line("selection: the job's own selectors", 4)
        return
    if str(run.action) != "unchanged":
        yield Line(f"selection: {plural(selection.count, 'node')}", 4)
    if show_nodes:
        yield from (Line(name, 5) for name in selection.node_names)


def _job_decides(run: PlannedRun) -> bool:
    details = run.request.get("runDetails", {})
    return details.get("jobID") is not None and details.get("includeNodesSelector") is None
