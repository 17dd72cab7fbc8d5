"""Views of ``runner status``, ``cancel``, ``rerun`` and ``unlock``: text for a person,
JSON (``"formatVersion": 1``) for programs. Nothing is edited: no secret is in the state.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.apply.model import RunReport, RunState, failed_only, skipped_only
from runner.errors import quoted, quoted_list
from runner.operations import (
    CancelResult,
    CancelVerdict,
    RefreshResult,
    RerunPlan,
    RerunResult,
    StatusReport,
    UnlockResult,
)
from runner.output import FORMAT_VERSION
from runner.render._lines import plural
from runner.render.apply_output import apply_document, next_steps, node_lines, nodes_json
from runner.shell import runner_command
from runner.state import ApplyRecord, LockInfo, RunRecord

__all__ = [
    "cancel_document",
    "render_cancel_json",
    "render_cancel_text",
    "render_rerun_json",
    "render_rerun_preview",
    "render_rerun_summary",
    "render_status_json",
    "render_status_text",
    "render_unlock_text",
    "rerun_document",
    "status_document",
    "unlock_warning",
]


# --------------------------------------------------------------------------- helpers


def when(moment: dt.datetime | None) -> str:
    """``2026-01-05 06:00:00 UTC``, the form lock descriptions use."""
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """``45s``, ``5m03s``, ``2h07m``: short and sortable by eye."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "no runs"


def _aligned(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows with their columns aligned (the last column is left as is)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return lines


def _text(lines: Iterable[str]) -> str:
    return "\n".join(lines) + "\n"


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


# --------------------------------------------------------------------------- status


def render_status_text(report: StatusReport) -> str:
    """The last apply, what --refresh learned, the runs in flight or uncertain, and
    the locks held."""
    if report.empty and not report.uncertain:
        return _text([f"No applies recorded yet (state: {report.state_path})."])
    lines: list[str] = []
    if report.last_apply is not None:
        lines += _last_apply_lines(report.last_apply, report.run_counts)
    if report.refresh is not None:
        lines += _refresh_lines(report.refresh)
    lines += _in_flight_lines(report.in_flight, report.now)
    lines += _uncertain_lines(report.uncertain)
    lines += _lock_lines(report.locks, report.now)
    return _text(lines)


def _last_apply_lines(apply: ApplyRecord, counts: Mapping[str, int]) -> list[str]:
    outcome = (
        apply.outcome.value
        if apply.outcome is not None
        else "no outcome recorded: still running, or its process was killed"
    )
    ended = ""
    if apply.finished_at is not None:
        took = (apply.finished_at - apply.started_at).total_seconds()
        ended = f", ended {when(apply.finished_at)} ({duration(took)})"
    commit = f", commit {apply.git_commit[:12]}" if apply.git_commit else ""
    resumed = f", resumed {plural(apply.resumed, 'time')}" if apply.resumed else ""
    lines = [
        f"Last apply: {apply.apply_id} ({outcome})",
        f"  by {apply.who} on {apply.host}{commit}",
        f"  started {when(apply.started_at)}{ended}{resumed}",
        f"  environments: {', '.join(apply.environments)}",
        f"  runs: {_counts(counts)}",
    ]
    if apply.argv:
        lines.append(f"  command: runner {' '.join(apply.argv)}")
    return lines


def _refresh_lines(refresh: RefreshResult) -> list[str]:
    if not refresh.runs and not refresh.problems:
        return ["Refreshed from Coalesce: no runs in flight to ask about."]
    lines = ["Refreshed from Coalesce:"]
    rows = []
    for item in refresh.runs:
        record = item.record
        if item.after is None:
            change = f"not refreshed: {item.problem}"
        elif item.after == item.before:
            change = f"still {item.after}"
        else:
            change = f"{item.before} -> {item.after}"
        failed, skipped = failed_only(item.failed_nodes), skipped_only(item.failed_nodes)
        counted = [plural(len(failed), "failed node")] if failed else []
        counted += [plural(len(skipped), "skipped node")] if skipped else []
        if counted:
            change += f" ({', '.join(counted)})"
        counter = f"run {record.run_counter}" if record.run_counter else "no run seen"
        rows.append([record.identity, counter, change])
    lines += _aligned(rows)
    for item in refresh.runs:
        for line in node_lines(item.failed_nodes):
            lines.append(f"      {item.record.identity} {line}")
    lines += [f"  {problem}" for problem in refresh.problems]
    return lines


def _in_flight_lines(runs: Sequence[RunRecord], now: dt.datetime) -> list[str]:
    if not runs:
        return ["No runs in flight."]
    rows = []
    for run in runs:
        since = run.fired_at or run.intent_at
        note = " (apply stopped waiting)" if run.status.value == "timeout" else ""
        rows.append(
            [
                run.identity,
                run.status.value,
                f"run {run.run_counter}",
                f"for {duration((now - since).total_seconds())}",
                (run.run_link or "") + note,
            ]
        )
    return [
        f"In flight ({len(runs)}):",
        *_aligned(rows),
        "  Cancel with: runner cancel ENV/RUN (or --all); "
        "runner status --refresh asks Coalesce how they stand.",
    ]


def _uncertain_lines(runs: Sequence[RunRecord]) -> list[str]:
    if not runs:
        return []
    rows = [
        [run.identity, run.status.value, f"since {when(run.intent_at)}", run.message or ""]
        for run in runs
    ]
    return [
        f"Outcome uncertain ({len(runs)}): sent, or about to be, with no runCounter recorded:",
        *_aligned(rows),
        "  They may or may not exist in Coalesce: look for them there before firing them "
        "again (runner apply --resume does that for the runs of an apply).",
    ]


def _lock_lines(locks: Sequence[LockInfo], now: dt.datetime) -> list[str]:
    if not locks:
        return ["No locks held."]
    lines = [f"Locks ({len(locks)}):"]
    for lock in locks:
        beat = duration((now - lock.heartbeat_at).total_seconds())
        state = (
            f"STALE: {lock.stale_reason}; {runner_command(['unlock', lock.environment])} removes it"
            if lock.stale
            else "live: its apply may still be running"
        )
        lines.append(f"  {lock.environment}: {lock.describe()}, last heartbeat {beat} ago")
        lines.append(f"    {state}")
    return lines


def render_status_json(report: StatusReport) -> str:
    return _json(status_document(report))


def status_document(report: StatusReport) -> dict[str, Any]:
    last = report.last_apply
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": "runner-status",
        "state": str(report.state_path),
        "now": _iso(report.now),
        "lastApply": None if last is None else _apply_json(last, report.run_counts),
        "refreshed": None if report.refresh is None else _refresh_json(report.refresh),
        "inFlight": [_run_json(run, report.now) for run in report.in_flight],
        "uncertain": [_run_json(run, report.now) for run in report.uncertain],
        "locks": [_lock_json(lock) for lock in report.locks],
    }


def _apply_json(apply: ApplyRecord, counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "applyID": apply.apply_id,
        "who": apply.who,
        "host": apply.host,
        "gitCommit": apply.git_commit,
        "environments": list(apply.environments),
        "argv": list(apply.argv),
        "startedAt": _iso(apply.started_at),
        "finishedAt": _iso(apply.finished_at),
        "outcome": apply.outcome.value if apply.outcome is not None else None,
        "resumed": apply.resumed,
        "runs": dict(counts),
    }


def _run_json(run: RunRecord, now: dt.datetime) -> dict[str, Any]:
    since = run.fired_at or run.intent_at
    return {
        "environment": run.environment,
        "batch": run.batch,
        "name": run.name,
        "applyID": run.apply_id,
        "status": run.status.value,
        "runCounter": run.run_counter,
        "runLink": run.run_link,
        "firedAt": _iso(run.fired_at),
        "intentAt": _iso(run.intent_at),
        "seconds": round((now - since).total_seconds(), 3),
        "message": run.message,
    }


def _refresh_json(refresh: RefreshResult) -> dict[str, Any]:
    return {
        "runs": [
            {
                "environment": item.record.environment,
                "name": item.record.name,
                "runCounter": item.record.run_counter,
                "before": item.before,
                "after": item.after,
                **nodes_json(item.failed_nodes),
                "problem": item.problem,
            }
            for item in refresh.runs
        ],
        "problems": list(refresh.problems),
    }


def _lock_json(lock: LockInfo) -> dict[str, Any]:
    return {
        "environment": lock.environment,
        "holder": lock.holder,
        "host": lock.host,
        "pid": lock.pid,
        "acquiredAt": _iso(lock.acquired_at),
        "heartbeatAt": _iso(lock.heartbeat_at),
        "stale": lock.stale,
        "staleReason": lock.stale_reason,
    }


# --------------------------------------------------------------------------- cancel

_VERDICT_WORDS = {
    CancelVerdict.CANCELED: "canceled",
    CancelVerdict.ALREADY_ENDED: "already ended",
    CancelVerdict.NOT_CANCELED: "NOT canceled",
}


def render_cancel_text(result: CancelResult) -> str:
    if not result.runs:
        return _text(["Nothing in flight to cancel."])
    rows = []
    for run in result.runs:
        counter = f"run {run.run_counter}" if run.run_counter is not None else "no runCounter"
        detail = ""
        if run.verdict is CancelVerdict.ALREADY_ENDED:
            detail = f"{run.status}: {run.message}" if run.message else f"{run.status}"
        elif run.verdict is CancelVerdict.NOT_CANCELED:
            detail = run.message or ""
        rows.append([_VERDICT_WORDS[run.verdict], run.identity, counter, detail])
    tally = {
        verdict: sum(1 for r in result.runs if r.verdict is verdict) for verdict in CancelVerdict
    }
    summary = [f"Canceled {plural(tally[CancelVerdict.CANCELED], 'run')}"]
    if tally[CancelVerdict.ALREADY_ENDED]:
        summary.append(f"{tally[CancelVerdict.ALREADY_ENDED]} had already ended")
    if tally[CancelVerdict.NOT_CANCELED]:
        summary.append(f"{tally[CancelVerdict.NOT_CANCELED]} could not be canceled")
    return _text([*_aligned(rows), "; ".join(summary) + "."])


def render_cancel_json(result: CancelResult) -> str:
    return _json(cancel_document(result))


def cancel_document(result: CancelResult) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": "runner-cancel",
        "exitCode": result.exit_code,
        "runs": [
            {
                "environment": run.environment,
                "name": run.name,
                "runCounter": run.run_counter,
                "result": run.verdict.value,
                "status": run.status,
                "message": run.message,
            }
            for run in result.runs
        ],
    }


# --------------------------------------------------------------------------- rerun


def render_rerun_preview(plan: RerunPlan) -> str:
    """What rerun is about to send, for the person asked to confirm."""
    source = f" (failed in apply {plan.source_apply})" if plan.source_apply is not None else ""
    lines = [f"Rerun {plural(len(plan.jobs), 'run')}{source}:"]
    rows = []
    for job in plan.jobs:
        request = job.request
        sends = [f"runID {request.run_id}"]
        force = request.force_ignore_environment_status
        if force is not None:
            sends.append(f"forceIgnoreEnvironmentStatus {str(force).lower()}")
        if request.parameters:
            sends.append(
                "parameters "
                + ", ".join(f"{key}={value}" for key, value in request.parameters.items())
            )
        if request.credentials is not None:
            sends.append("userCredentials")
        rows.append(
            [
                job.identity,
                f"run {job.original_counter} {job.original.status.value}",
                "sends " + "; ".join(sends),
            ]
        )
    lines += _aligned(rows)
    lines.append("  A rerun runs again only the nodes that did not complete.")
    if plan.never_fired:
        names = quoted_list(r.identity for r in plan.never_fired)
        lines.append(f"Never fired in apply {plan.source_apply} (runner apply fires them): {names}")
    return _text(lines)


def render_rerun_summary(outcome: RerunResult) -> str:
    result = outcome.result
    counts: dict[str, int] = {}
    lines: list[str] = []
    for run in result.runs:
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
        lines.append(f"  {run.state.value:<13} {run.identity}{_rerun_bits(run, outcome)}")
        if run.message and run.state is not RunState.COMPLETED:
            lines.append(f"      {run.message}")
        lines.extend(f"      {line}" for line in node_lines(run.failed_nodes))
    lines += [f"  error: {error}" for error in result.errors]
    total = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing rerun"
    lines.insert(0, f"Rerun (apply {result.apply_id}): {total}.")
    lines += next_steps(result, "rerun")
    return _text(lines)


def _rerun_bits(run: RunReport, outcome: RerunResult) -> str:
    bits = []
    original = outcome.rerun_of.get(run.identity)
    if original is not None:
        bits.append(f"rerun of run {original}")
    if run.run_counter is not None:
        bits.append(f"as run {run.run_counter}")
    if run.run_link:
        bits.append(run.run_link)
    return f" ({', '.join(bits)})" if bits else ""


def render_rerun_json(outcome: RerunResult) -> str:
    return _json(rerun_document(outcome))


def rerun_document(outcome: RerunResult) -> dict[str, Any]:
    document = apply_document(outcome.result)
    document["kind"] = "runner-rerun"
    for run in document["runs"]:
        identity = f"{run['environment']}/{run['name']}"
        run["rerunOf"] = outcome.rerun_of.get(identity)
    return document


# --------------------------------------------------------------------------- unlock


def render_unlock_text(result: UnlockResult) -> str:
    if result.removed is None:
        held = quoted_list(lock.environment for lock in result.others)
        others = f" (locks held: {held})" if held else ""
        return _text([f"{quoted(result.environment)} was not locked{others}."])
    lock = result.removed
    lines = [
        f"Removed the lock of {quoted(result.environment)}:",
        f"  held by {lock.holder} on {lock.host} (pid {lock.pid}) "
        f"since {when(lock.acquired_at)}, last heartbeat {when(lock.heartbeat_at)}",
    ]
    if lock.stale:
        lines.append(f"  it was stale: {lock.stale_reason}")
    return _text(lines)


def unlock_warning(result: UnlockResult) -> str | None:
    """What to say on stderr when the removed lock did not look stale."""
    if not result.holder_may_be_running or result.removed is None:
        return None
    lock = result.removed
    return (
        f"warning: the lock of {quoted(result.environment)} did not look stale: its holder, "
        f"{lock.holder} (pid {lock.pid} on {lock.host}), may still be running. It was "
        "removed because you asked; if that apply is alive, it will notice at its next "
        "heartbeat and stop firing. Check with: runner status"
    )
