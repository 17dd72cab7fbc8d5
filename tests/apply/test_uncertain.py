"""A negative lookup is not proof: a run whose startRun answer was lost is never sent
again on its own, however the answer was lost and however late Coalesce shows the run.

The simulator sits behind a hostile front (in-process, through ``httpx.ASGITransport``)
that carries out every startRun, then loses or spoils its answer, and can hide young
runs from the run list as a lagging read replica would.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.apply import ApplyOptions, RunState
from runner.apply.executor import uncertain_pending
from runner.errors import RunnerError
from runner.operations import resume
from runner.operations._shared import load_specs_for_operations
from runner.operations.status import read_status, refresh_in_flight
from runner.plan import Action, PlanRequest, plan_specs
from runner.render.plan_text import render_plan_text
from runner.runtime import Runtime
from runner.sim import SimApp, SimClock, create_app, parse_world
from runner.sim.app import Receive, Scope, Send
from runner.state import open_state
from tests.apply._inprocess import apply_specs
from tests.apply._support import asgi_answer, batch, run, world, write_spec


class HostileFront:
    """Passes requests to the simulator, except that:

    - every startRun is carried out, then answered as ``answer`` says (status and body);
    - once a run was created, while ``hidden`` is above zero, each look at the run list
      (or at one run) shows no run created through this front, and counts ``hidden``
      down: a list that lags.
    """

    def __init__(self, app: SimApp, *, status: int, body: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.status = status
        self.body = body
        self.headers = headers
        self.hidden = 0
        self.spoil = True  # False: startRun is answered as the simulator answers it
        self.hold: float | None = None  # hold startRun unanswered, create it this much later
        self._held: set[asyncio.Task[None]] = set()
        self.created: list[int] = []
        self.start_runs = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/scheduler/startRun":
            await self._start_run(scope, receive, send)
            return
        lagging = self.hidden > 0 and self.created  # only once a run was created
        if scope["type"] == "http" and path.startswith("/api/v1/runs") and lagging:
            self.hidden -= 1
            await self._without_mine(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _start_run(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.start_runs += 1
        if not self.spoil:
            await self.app(scope, receive, send)
            return
        if self.hold is not None:
            await self._hold_then_create(scope, receive)
            return
        body = await asgi_answer(self.app, scope, receive)
        self.created.append(json.loads(body)["runCounter"])
        headers = [(b"content-type", b"application/json")]
        headers += [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(self.body).encode()})

    async def _hold_then_create(self, scope: Scope, receive: Receive) -> None:
        """Never answer; create the run ``hold`` seconds later, whatever the client did
        meanwhile (a backend that finishes the work of a request its caller gave up on)."""
        body = (await receive()).get("body", b"")
        delay = self.hold or 0.0

        async def create() -> None:
            await asyncio.sleep(delay)

            async def replay() -> Any:
                return {"type": "http.request", "body": body, "more_body": False}

            raw = await asgi_answer(self.app, scope, replay)
            self.created.append(json.loads(raw)["runCounter"])

        task = asyncio.get_running_loop().create_task(create())
        self._held.add(task)  # kept: it must outlive the request the client gave up on
        await asyncio.Event().wait()  # until the client gives up (the task is cancelled)

    async def _without_mine(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path != "/api/v1/runs":  # one run: a young one is not found yet
            body = json.dumps({"error": {"errorString": "404: Run not found"}}).encode()
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        page = json.loads(await asgi_answer(self.app, scope, receive))
        page["data"] = [r for r in page["data"] if r["id"] not in self.created]
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(page).encode()})


ANSWERS = {
    "503 with Retry-After": (503, {"error": {"errorString": "unavailable"}}, {"retry-after": "1"}),
    "503": (503, {"error": {"errorString": "unavailable"}}, {}),
    "502": (502, "<html>Bad gateway</html>", {}),
    "runCounter 10**29": (200, {"runCounter": 10**29}, {}),
    "runCounter -1": (200, {"runCounter": -1}, {}),
    "runCounter 0": (200, {"runCounter": 0}, {}),
    "runCounter true": (200, {"runCounter": True}, {}),
    "runCounter 1.5": (200, {"runCounter": 1.5}, {}),
    'runCounter "7"': (200, {"runCounter": "7"}, {}),
}


def _front(answer: str) -> HostileFront:
    status, body, headers = ANSWERS[answer]
    app = create_app(parse_world(world()), clock=SimClock(50))
    return HostileFront(app, status=status, body=body, headers=headers)


def _apply(specs: Path, front: HostileFront, state: Path, window: float) -> Any:
    return apply_specs(
        specs,
        httpx.ASGITransport(app=front),
        state=state,
        options=ApplyOptions(poll_interval=0.02, lookup_window=window),
    )


def _resume(front: HostileFront, state: Path, **options: Any) -> Any:
    with open_state(state) as store:
        return resume(
            store,
            options=ApplyOptions(poll_interval=0.02, lookup_window=0, **options),
            sink=lambda event: None,
            runtime=Runtime(
                transport=httpx.ASGITransport(app=front), install_signal_handlers=False
            ),
        )


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_a_spoiled_answer_and_a_lagging_list_still_make_one_run(
    answer: str, specs: Path, tmp_path: Path
) -> None:
    front = _front(answer)
    front.hidden = 1  # the first look does not show the new run yet
    write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])

    applied = _apply(specs, front, tmp_path / "state.db", window=30)

    (report,) = applied.result.runs
    assert front.start_runs == 1, "sent again after a negative lookup"
    assert report.state is RunState.COMPLETED, report.message
    assert report.run_counter == front.created[0]
    assert applied.result.exit_code == 0


def test_a_run_coalesce_does_not_show_in_the_window_stays_uncertain_until_it_does(
    specs: Path, tmp_path: Path
) -> None:
    front = _front("503")
    front.hidden = 10**6  # the list lags behind for as long as the test wants
    write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])
    state = tmp_path / "state.db"

    applied = _apply(specs, front, state, window=0)

    (report,) = applied.result.runs
    assert report.state is RunState.UNCERTAIN
    assert applied.result.exit_code == 5
    assert "runner apply --resume --refire-uncertain" in (report.message or "")

    # A new apply of the environment refuses to fire it again.
    with pytest.raises(RunnerError, match="left 'one' uncertain in 'alpha'") as refused:
        _apply(specs, front, state, window=0)
    assert "runner apply --resume" in str(refused.value)
    assert front.start_runs == 1

    # A resume looks again; while Coalesce still does not show it, nothing is fired.
    still = _resume(front, state)
    assert front.start_runs == 1
    assert still.exit_code == 5
    assert [r.state for r in still.runs] == [RunState.UNCERTAIN]

    # Once the list catches up, a resume finds it: no second run, the right counter.
    front.hidden = 0
    found = _resume(front, state)
    assert front.start_runs == 1
    assert found.exit_code == 0
    (report,) = found.runs
    assert report.state is RunState.COMPLETED and report.run_counter == front.created[0]


def test_only_refire_uncertain_fires_an_uncertain_run_anew_and_only_once(
    specs: Path, tmp_path: Path
) -> None:
    front = _front("502")
    front.hidden = 10**6
    write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])
    state = tmp_path / "state.db"
    assert _apply(specs, front, state, window=0).result.exit_code == 5

    # Say a person checked that the first request never reached Coalesce's
    # application: they fire it anew, on purpose.
    front.spoil = False
    refired = _resume(front, state, refire_uncertain=True)

    assert front.start_runs == 2
    assert refired.exit_code == 0
    assert [r.state for r in refired.runs] == [RunState.COMPLETED]
    with pytest.raises(RunnerError, match="no interrupted apply"):
        _resume(front, state, refire_uncertain=True)
    assert front.start_runs == 2


def test_status_refresh_finds_an_uncertain_run_once_coalesce_shows_it_and_fires_nothing(
    specs: Path, tmp_path: Path
) -> None:
    front = _front("502")
    front.hidden = 10**6
    spec = write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])
    state = tmp_path / "state.db"
    assert _apply(specs, front, state, window=0).result.exit_code == 5
    runtime = Runtime(transport=httpx.ASGITransport(app=front), install_signal_handlers=False)

    def refresh() -> Any:
        with open_state(state) as store:
            return refresh_in_flight(store, load_specs_for_operations([spec]), runtime=runtime)

    (still,) = refresh().runs
    assert (still.before, still.after) == ("uncertain", "uncertain")
    front.hidden = 0
    (found,) = refresh().runs
    assert front.start_runs == 1
    assert found.before == "uncertain" and found.record.run_counter == front.created[0]
    with open_state(state) as store:
        assert read_status(store).uncertain == ()
        # Found, the run counts as applied: a new apply is no longer refused.
        assert uncertain_pending(store, "alpha") is None


def test_plan_shows_an_uncertain_run_as_such_never_as_unchanged(
    specs: Path, tmp_path: Path
) -> None:
    front = _front("503")
    front.hidden = 10**6
    write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])
    state = tmp_path / "state.db"
    assert _apply(specs, front, state, window=0).result.exit_code == 5

    with open_state(state) as store:
        planned = plan_specs(PlanRequest(paths=(str(specs),), offline=True), state=store)

    (one,) = planned.plan.runs()
    assert one.action is Action.UNCERTAIN
    assert [w.code for w in one.warnings if w.fails] == ["uncertain"]
    text = render_plan_text(planned.plan, color=False)
    assert "    ? one\n" in text
    assert "Plan: 0 new, 0 changed, 0 unchanged, 1 uncertain, 0 removed." in text


def test_a_write_held_past_the_deadline_then_created_is_found_not_sent_again(
    specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_REQUEST_DEADLINE", "0.5")  # the client gives up at 0.5 s
    front = _front("503")
    front.hold = 1.0  # ... and the run is created half a second after that
    write_spec(specs, "alpha", "1", "sim://", [batch("only", [run("one")])])

    applied = _apply(specs, front, tmp_path / "state.db", window=30)

    (report,) = applied.result.runs
    assert front.start_runs == 1, "sent again after the client gave up"
    assert report.state is RunState.COMPLETED, report.message
    assert report.run_counter == front.created[0]
