"""Applying specs in this process, through a transport the test chooses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runner.apply import ApplyEvent, ApplyOptions, ApplyResult, Runtime, apply_plan
from runner.plan import PlanRequest, plan_specs
from runner.state import open_state


@dataclass
class Applied:
    result: ApplyResult
    events: list[ApplyEvent] = field(default_factory=list)

    def notes(self) -> list[str]:
        return [e.message or "" for e in self.events if e.kind == "note"]

    def by_name(self) -> dict[str, object]:
        return {r.name: r for r in self.result.runs}


def apply_specs(
    folder: Path,
    transport: httpx.AsyncBaseTransport,
    *,
    state: Path,
    options: ApplyOptions | None = None,
    changed_only: bool = False,
) -> Applied:
    """Plan ``folder`` against the state and apply it, as `runner apply --auto-approve`."""
    events: list[ApplyEvent] = []
    store = open_state(state)
    try:
        planned = plan_specs(
            PlanRequest(paths=(str(folder),), offline=True, require_secrets=True), state=store
        )
        result = apply_plan(
            planned.plan,
            planned.specs,
            store=store,
            options=options or ApplyOptions(poll_interval=0.02),
            sink=events.append,
            changed_only=changed_only,
            runtime=Runtime(transport=transport, install_signal_handlers=False),
        )
    finally:
        store.close()
    return Applied(result, events)
