"""How often apply asks Coalesce about its runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from runner.apply import ApplyEvent, ApplyOptions, EnvironmentJob
from runner.apply.executor import Executor
from runner.apply.model import BatchJob, RunJob
from runner.apply.poller import poll_interval_for
from runner.coalesce import ClientPool
from runner.coalesce.requests import StartRunRequest
from runner.secrets import Secret
from runner.state import open_state

COALESCE = "https://app.coalescesoftware.io"


@pytest.mark.parametrize(
    ("url", "wanted", "used"),
    [
        (COALESCE, 0.2, 1.0),
        (COALESCE, 5.0, 5.0),
        ("sim://", 0.02, 0.02),
        ("http://127.0.0.1:8765", 0.02, 0.02),
        ("http://localhost:8765", 0.05, 0.05),
        ("https://[::1]:8443", 0.05, 0.05),
    ],
)
def test_coalesce_is_polled_at_most_once_a_second(url: str, wanted: float, used: float) -> None:
    assert poll_interval_for(url, wanted) == used


def _coalesce() -> httpx.MockTransport:
    """A Coalesce with one environment, whose runs are over as soon as they start."""
    started: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/environments/1":
            return httpx.Response(200, json={"id": "1", "status": "Waiting"})
        if request.url.path == "/scheduler/startRun":
            started.append(len(started) + 1)
            return httpx.Response(200, json={"runCounter": started[-1]})
        if request.url.path == "/api/v1/runs":
            runs = [{"id": n, "runStatus": "completed"} for n in reversed(started)]
            return httpx.Response(200, json={"data": runs})
        return httpx.Response(404, json={"error": {"errorString": "404: Not Found"}})

    return httpx.MockTransport(handle)


async def test_a_resumed_or_library_apply_polls_coalesce_no_faster_either(tmp_path: Path) -> None:
    """The floor belongs to the executor, so every way of applying gets it."""
    request = StartRunRequest("1", job_id="3")
    job = EnvironmentJob(
        name="prod",
        environment_id="1",
        url=COALESCE,
        token=Secret("t0ken-for-polling"),
        token_source="a test",
        batches=(
            BatchJob(
                "b", None, "stop", (RunJob("prod", "b", "r", request, request.redacted(), "h"),)
            ),
        ),
    )
    store = open_state(tmp_path / "state.db")
    apply_id = store.begin_apply(
        who="me", host="here", git_commit=None, environments=["prod"], argv=[]
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if seconds >= 5:  # the lock's heartbeat: never needed in this test
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    events: list[ApplyEvent] = []
    async with ClientPool(transport=_coalesce()) as pool:
        executor = Executor(
            [job],
            store=store,
            pool=pool,
            apply_id=apply_id,
            options=ApplyOptions(poll_interval=0.05),
            sink=events.append,
            sleep=sleep,
        )
        result = await executor.run()
    store.close()

    assert result.exit_code == 0
    assert 1.0 in waits and 0.05 not in waits
    assert "polling Coalesce every 1s, its lowest interval" in [e.message for e in events]
