"""Views of an apply: progress while it runs, the final summary, JSON, and a markdown report.

Progress is one line per state change when the output is not a terminal (or is a dumb
one, or a CI log), and a live table when it is. Nothing is edited on the way out: no
secret is in what it is built from.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from runner.apply.model import (
    ONCE,
    ApplyEvent,
    ApplyResult,
    FailedNode,
    NotFired,
    RunReport,
    RunState,
    failed_only,
    skipped_only,
)
from runner.errors import quoted_list
from runner.output import FORMAT_VERSION, Discard, is_quiet
from runner.render.live import LiveProgress
from runner.render.plan_markdown import md_table, md_text
from runner.render.terminal import terminal_for
from runner.shell import runner_command


def _clock(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%H:%M:%S")


class LineProgress:
    """One line per change: for logs and CI, where nothing is redrawn."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: ApplyEvent) -> None:
        if event.kind == "note":
            line = f"{_clock()} {event.environment}: {event.message}"
        elif event.run is not None:
            line = f"{_clock()} {_run_line(event.run)}"
        else:
            return
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Nothing to tear down."""


def _run_line(run: RunReport) -> str:
    parts = [run.identity, run.state.value]
    if run.run_counter is not None:
        parts.append(f"run {run.run_counter}")
    if run.message and run.state in (RunState.NOT_STARTED, RunState.SKIPPED, RunState.TIMEOUT):
        parts.append(f"- {run.message}")
    return " ".join(parts)


def progress_for(runs: Sequence[RunReport] = ()) -> LineProgress | LiveProgress:
    """How to show progress on stderr, as :func:`runner.render.terminal.terminal_for`
    says: a live table on a terminal (not a dumb one, outside CI), one line per change
    anywhere else; none under ``--quiet``."""
    if is_quiet():
        return LineProgress(Discard())
    if terminal_for(sys.stderr).live:
        return LiveProgress(runs)
    return LineProgress()


def render_apply_summary(result: ApplyResult, again: FireAgain | None = None) -> str:
    """What happened, the failed nodes with their errors, and what to do next (``again``:
    see :func:`next_steps`)."""
    lines: list[str] = []
    counts: dict[str, int] = {}
    shown: str | None = None
    for run in result.runs:
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
        lines.append(f"  {run.state.value:<13} {run.identity}" + _counter(run))
        # Runs refused for one reason (a lock, Failed Deploy) say it once, not per run.
        if run.message and run.state is not RunState.COMPLETED and run.message != shown:
            lines.append(f"      {run.message}")
        shown = run.message
        lines.extend(f"      {line}" for line in node_lines(run.failed_nodes))
    for error in result.errors:
        lines.append(f"  error: {error}")
    total = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    header = f"Apply {result.apply_id}: {total or 'nothing to fire'}."
    lines.insert(0, header)
    lines.extend(next_steps(result, again=again))
    return "\n".join(lines) + "\n"


def node_lines(nodes: Sequence[FailedNode]) -> list[str]:
    """``failed node X: error`` for each node that failed, then ``skipped node Y: ...``
    for each one Coalesce skipped because a node upstream of it failed."""
    return [
        f"{node.status} node {node.label}: {node.error}"
        for node in (*failed_only(nodes), *skipped_only(nodes))
    ]


def nodes_json(nodes: Sequence[FailedNode]) -> dict[str, list[dict[str, Any]]]:
    """``failedNodes`` (the nodes that failed) and ``skippedNodes`` (those skipped
    because of them), each node with its ``status``."""
    return {
        "failedNodes": [node.as_dict() for node in failed_only(nodes)],
        "skippedNodes": [node.as_dict() for node in skipped_only(nodes)],
    }


def _counter(run: RunReport) -> str:
    bits = []
    if run.run_counter is not None:
        bits.append(f"run {run.run_counter}")
    if run.run_link:
        bits.append(run.run_link)
    return f" ({', '.join(bits)})" if bits else ""


def next_steps(result: ApplyResult, noun: str = "run", again: FireAgain | None = None) -> list[str]:
    """What to do about an apply's (or a rerun's) runs still going, or not fired, for a
    person. ``again`` builds the command that fires just the runs not fired."""
    in_flight = [r for r in result.runs if r.state in (RunState.WAITING_TO_RUN, RunState.RUNNING)]
    steps: list[str] = []
    if result.interrupted:
        steps.append("Interrupted: nothing more was fired.")
        if in_flight:
            steps.append("Still running in Coalesce:")
            steps.extend(f"  {r.identity} (run {r.run_counter})" for r in in_flight)
            steps.append("Cancel them with:  runner cancel --all")
        steps.append("Continue with:     runner apply --resume")
    elif in_flight:
        steps.append(
            "Fired and not waited for (--no-wait); follow them with: runner status --refresh"
        )
    if any(r.state is RunState.TIMEOUT for r in result.runs):
        steps.append(f"Stopped waiting for {noun}s that may still be running: see runner status")
    uncertain = [r for r in result.runs if r.uncertain]
    if uncertain:
        steps.append(
            f"Uncertain: Coalesce may have created {len(uncertain)} {noun}(s) it does not show: "
            + quoted_list(r.identity for r in uncertain[:5])
            + (" ..." if len(uncertain) > 5 else "")
        )
        steps.append("Look again with:   runner status --refresh  (or runner apply --resume)")
        steps.append("Fire them anew only with: runner apply --resume --refire-uncertain")
    refused = [r for r in result.runs if r.state is RunState.NOT_STARTED and r.run_counter is None]
    if refused and not result.interrupted and noun == "run":
        steps.extend(_fire_again(refused, again or _bare_apply))
    return steps


#: The arguments of a ``runner`` command that fires just the runs named (``ENV/RUN``),
#: built from the command line that apply was given (see ``runner.commands.apply``).
FireAgain = Callable[[Sequence[str]], Sequence[str]]


def _bare_apply(identities: Sequence[str]) -> list[str]:
    """Without the command line apply was given (a library call): only the runs."""
    return ["apply", *(arg for identity in identities for arg in ("--run", identity))]


def _fire_again(refused: Sequence[RunReport], again: FireAgain) -> list[str]:
    """For each reason runs were not fired, the command that fires just those, and when."""
    by_cause: dict[NotFired, list[str]] = {}
    for run in refused:
        by_cause.setdefault(run.not_fired or NotFired.ERROR, []).append(run.identity)
    return [
        f"Not fired: fire just those, {ONCE[cause]}, with: {runner_command(again(identities))}"
        for cause, identities in by_cause.items()
    ]


def render_apply_json(result: ApplyResult) -> str:
    return json.dumps(apply_document(result), indent=2) + "\n"


def apply_document(result: ApplyResult) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": "runner-apply",
        "applyID": result.apply_id,
        "interrupted": result.interrupted,
        "exitCode": result.exit_code,
        "startedAt": result.started_at.isoformat() if result.started_at else None,
        "finishedAt": result.finished_at.isoformat() if result.finished_at else None,
        "errors": list(result.errors),
        "gaveUp": dict(result.gave_up),
        "runs": [
            {
                "environment": run.environment,
                "batch": run.batch,
                "name": run.name,
                "runCounter": run.run_counter,
                "status": run.state.value,
                "runLink": run.run_link,
                "firedAt": run.fired_at.isoformat() if run.fired_at else None,
                "endedAt": run.ended_at.isoformat() if run.ended_at else None,
                "message": run.message,
                **nodes_json(run.failed_nodes),
            }
            for run in result.runs
        ],
    }


REPORT_COLUMNS = (
    "environment",
    "batch",
    "run",
    "status",
    "runCounter",
    "failed nodes",
    "skipped nodes",
)


def render_apply_markdown(result: ApplyResult) -> str:
    """A report for a pull request or a CI job summary, with a Gantt chart of the runs."""
    lines = [f"## runner apply {result.apply_id}", ""]
    rows: list[list[str]] = []
    for run in result.runs:
        failed = _md_nodes(failed_only(run.failed_nodes))
        skipped = _md_nodes(skipped_only(run.failed_nodes))
        counter = str(run.run_counter) if run.run_counter is not None else ""
        if run.run_link and counter:
            counter = f"[{counter}]({run.run_link})"
        rows.append(
            [
                md_text(run.environment),
                md_text(run.batch),
                md_text(run.name),
                run.state.value,
                counter,
                failed,
                skipped,
            ]
        )
    lines += md_table(REPORT_COLUMNS, rows)
    for error in result.errors:
        lines += ["", f"> **error:** {md_text(error)}"]
    gantt = _gantt(result)
    if gantt:
        lines += ["", "```mermaid", *gantt, "```"]
    return "\n".join(lines) + "\n"


def _gantt(result: ApplyResult) -> list[str]:
    fired = [r for r in result.runs if r.fired_at is not None]
    if not fired:
        return []
    end_default = result.finished_at or dt.datetime.now(dt.UTC)
    lines = [
        "gantt",
        "    title Runs over time",
        "    dateFormat YYYY-MM-DDTHH:mm:ss",
        "    axisFormat %H:%M:%S",
    ]
    for environment in dict.fromkeys(r.environment for r in fired):
        lines.append(f"    section {_mermaid(environment)}")
        for run in (r for r in fired if r.environment == environment):
            assert run.fired_at is not None
            start = run.fired_at.strftime("%Y-%m-%dT%H:%M:%S")
            seconds = max(1, round(((run.ended_at or end_default) - run.fired_at).total_seconds()))
            tag = {RunState.COMPLETED: "done", RunState.RUNNING: "active"}.get(run.state, "crit")
            lines.append(f"    {_mermaid(run.name)} :{tag}, {start}, {seconds}s")
    return lines


def _md_nodes(nodes: Sequence[FailedNode]) -> str:
    return "<br>".join(md_text(f"{node.label}: {node.error}") for node in nodes)


def _mermaid(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_ ./" else "_" for c in text)
