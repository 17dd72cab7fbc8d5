"""A startRun whose answer is lost, when Coalesce cannot even be asked about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from runner.apply import ApplyOptions, RunState
from runner.operations import resume
from runner.runtime import Runtime
from runner.sim import SimApp, SimClock, create_app, parse_world
from runner.sim.app import Receive, Scope, Send
from runner.state import Outcome, RunStatus, open_state
from tests.apply._inprocess import apply_specs
from tests.apply._support import batch, run, world, write_spec


class LosesOneAnswer:
    """Passes requests to the simulator, except that the startRun of the run tagged
    ``lost`` is carried out and answered 502, and, while ``broken``, looking at single
    runs fails (500 with Retry-After: 0, so that retries are quick)."""

    def __init__(self, app: SimApp) -> None:
        self.app = app
        self.broken = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.broken and scope["type"] == "http" and path.startswith("/api/v1/runs/"):
            await _answer(send, 500, {"error": {"errorString": "500: Internal Server Error"}})
            return
        if path != "/scheduler/startRun":
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        tag = json.loads(raw).get("parameters", {}).get("tag")
        answers: list[Any] = []

        async def replay() -> Any:
            return {"type": "http.request", "body": raw, "more_body": False}

        async def keep(message: Any) -> None:
            answers.append(message)

        await self.app(scope, replay, keep)
        if tag == "lost":
            await _answer(send, 502, {"error": {"errorString": "502: Bad Gateway"}})
            return
        for message in answers:
            await send(message)


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def test_a_lost_answer_that_cannot_be_looked_up_spares_the_other_runs_and_can_be_resumed(
    specs: Path, tmp_path: Path
) -> None:
    app = create_app(parse_world(world()), clock=SimClock(20))
    wrapper = LosesOneAnswer(app)
    first = [run("lost"), *(run(f"other-{i}") for i in range(3))]
    write_spec(
        specs, "alpha", "1", "sim://",
        [batch("first", first, maxConcurrent=2), batch("second", [run("later")])],
    )  # fmt: skip
    state = tmp_path / "state.db"

    applied = apply_specs(
        specs,
        httpx.ASGITransport(app=wrapper),
        state=state,
        options=ApplyOptions(poll_interval=0.02, lookup_window=0.5),
    )

    runs = {r.name: r for r in applied.result.runs}
    for name in ("other-0", "other-1", "other-2"):
        assert runs[name].state is RunState.COMPLETED, runs[name]
    assert runs["lost"].state is RunState.UNCERTAIN
    assert "never fired again on its own" in (runs["lost"].message or "")
    assert "runner apply --resume" in (runs["lost"].message or "")
    assert runs["later"].state is RunState.SKIPPED
    assert applied.result.exit_code == 5
    created = sorted(r.body["parameters"]["tag"] for r in app.simulator.all_runs())
    assert created == ["lost", "other-0", "other-1", "other-2"]

    store = open_state(state)
    try:
        record = store.last_apply()
        assert record is not None and record.outcome is Outcome.INTERRUPTED
        journal = {r.name: r for r in store.runs_of_apply(record.apply_id)}
        assert journal["lost"].status is RunStatus.AMBIGUOUS

        wrapper.broken = False
        resumed = resume(
            store,
            options=ApplyOptions(poll_interval=0.02),
            sink=lambda event: None,
            runtime=Runtime(
                transport=httpx.ASGITransport(app=wrapper), install_signal_handlers=False
            ),
        )
    finally:
        store.close()

    assert resumed.exit_code == 0
    tags = sorted(r.body["parameters"]["tag"] for r in app.simulator.all_runs())
    assert tags == ["later", "lost", "other-0", "other-1", "other-2"]
    lost = next(r for r in resumed.runs if r.name == "lost")
    sim_lost = next(r for r in app.simulator.all_runs() if r.body["parameters"]["tag"] == "lost")
    assert lost.run_counter == sim_lost.id and lost.state is RunState.COMPLETED


class LosesSightOfRuns:
    """Passes requests to the simulator until the first startRun is answered; from then
    on every question about runs fails (500 with Retry-After: 0)."""

    def __init__(self, app: SimApp) -> None:
        self.app = app
        self.fired = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.fired and (path.startswith("/api/v1/runs") or path == "/scheduler/runStatus"):
            await _answer(send, 500, {"error": {"errorString": "500: Internal Server Error"}})
            return
        await self.app(scope, receive, send)
        self.fired = self.fired or path == "/scheduler/startRun"


def test_a_run_apply_loses_track_of_is_reported_like_a_timeout(specs: Path, tmp_path: Path) -> None:
    app = create_app(parse_world(world()), clock=SimClock(20))
    batches = [batch("first", [run("watched")]), batch("second", [run("later")])]
    write_spec(specs, "alpha", "1", "sim://", batches)
    state = tmp_path / "state.db"

    applied = apply_specs(specs, httpx.ASGITransport(app=LosesSightOfRuns(app)), state=state)

    runs = {r.name: r for r in applied.result.runs}
    assert runs["watched"].state is RunState.TIMEOUT
    assert "lost track of the run" in (runs["watched"].message or "")
    assert "runner cancel alpha/watched" in (runs["watched"].message or "")
    assert runs["later"].state is RunState.SKIPPED
    assert applied.result.exit_code == 4, "not a success: nobody knows how the run ended"
    store = open_state(state)
    try:
        in_flight = store.runs_in_flight("alpha")
    finally:
        store.close()
    assert [(r.name, r.status) for r in in_flight] == [("watched", RunStatus.TIMEOUT)]
