"""Views of an apply: progress while it runs, the final summary, JSON, and a markdown report.

Progress is one line per state change when the output is not a terminal (or is a dumb
one, or a CI log), and a live table when it is. Nothing is edited on the way out: no
secret is in what it is built from.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from runner.apply.model import ApplyEvent, ApplyResult, RunReport, RunState
from runner.output import Discard, is_quiet
from runner.render.live import LiveProgress
from runner.render.terminal import terminal_for

FORMAT_VERSION = 1


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


def render_apply_summary(result: ApplyResult) -> str:
    """What happened, the failed nodes with their errors, and what to do next."""
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
        for node in run.failed_nodes:
            lines.append(f"      failed node {node.name or node.node_id}: {node.error}")
    for error in result.errors:
        lines.append(f"  error: {error}")
    total = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    header = f"Apply {result.apply_id}: {total or 'nothing to fire'}."
    lines.insert(0, header)
    lines.extend(next_steps(result))
    return "\n".join(lines) + "\n"


def _counter(run: RunReport) -> str:
    bits = []
    if run.run_counter is not None:
        bits.append(f"run {run.run_counter}")
    if run.run_link:
        bits.append(run.run_link)
    return f" ({', '.join(bits)})" if bits else ""


def next_steps(result: ApplyResult, noun: str = "run") -> list[str]:
    """What to do about an apply's (or a rerun's) runs still going, for a person."""
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
            + ", ".join(r.identity for r in uncertain[:5])
            + (" ..." if len(uncertain) > 5 else "")
        )
        steps.append("Look again with:   runner status --refresh  (or runner apply --resume)")
        steps.append("Fire them anew only with: runner apply --resume --refire-uncertain")
    refused = [r for r in result.runs if r.state is RunState.NOT_STARTED and r.run_counter is None]
    if refused and not result.interrupted and noun == "run":
        runs = " ".join(f"--run '{r.identity}'" for r in refused[:5])
        more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
        steps.append(f"Not fired: fire just those, once fixed, with: runner apply {runs}{more}")
    return steps


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
                "failedNodes": [node.as_dict() for node in run.failed_nodes],
            }
            for run in result.runs
        ],
    }


def render_apply_markdown(result: ApplyResult) -> str:
    """A report for a pull request or a CI job summary, with a Gantt chart of the runs."""
    lines = [f"## runner apply {result.apply_id}", ""]
    lines += [
        "| environment | batch | run | status | runCounter | failed nodes |",
        "|---|---|---|---|---|---|",
    ]
    for run in result.runs:
        failed = "<br>".join(_md(f"{n.name or n.node_id}: {n.error}") for n in run.failed_nodes)
        counter = str(run.run_counter) if run.run_counter is not None else ""
        if run.run_link and counter:
            counter = f"[{counter}]({run.run_link})"
        lines.append(
            f"| {_md(run.environment)} | {_md(run.batch)} | {_md(run.name)} | "
            f"{run.state.value} | {counter} | {failed} |"
        )
    for error in result.errors:
        lines += ["", f"> **error:** {_md(error)}"]
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


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("`", "\\`").replace("\n", " ")


def _mermaid(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_ ./" else "_" for c in text)
