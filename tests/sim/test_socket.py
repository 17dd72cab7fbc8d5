"""``runner sim`` over a real socket, driven like a third-party client would drive Coalesce."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.sim import ManualClock, create_app
from runner.sim.serve import HttpImplementation, bind, url_of
from runner.sim.serve import server as sim_server
from tests.sim.conftest import AUTH, SMALL_WORLD, small_world
from tests.sim.served import Served, serve, stop

DOCUMENTED_STATUSES = {
    "completed",
    "initializing",
    "rendering",
    "canceled",
    "failed",
    "running",
    "waitingToRun",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    world = tmp_path_factory.mktemp("world") / "world.yaml"
    world.write_text(json.dumps(SMALL_WORLD))  # JSON is YAML
    served = serve("--config", str(world), "--speed", "50", "--seed", "4")
    yield served
    stop(served)


def test_a_plain_client_starts_a_run_and_polls_it_to_completion(server: Served) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=5) as client:
        client.post("/_sim/reset")
        response = client.post(
            "/scheduler/startRun",
            json={
                "runDetails": {"environmentID": "3", "parallelism": 4},
                "userCredentials": {
                    "snowflakeAuthType": "Basic",
                    "snowflakeUsername": "u",
                    "snowflakePassword": "p",
                },
                "parameters": {"load_date": "2026-01-05", "region": "emea"},
            },
        )
        assert response.status_code == 200
        run = response.json()["runCounter"]
        assert isinstance(run, int)
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = client.get("/scheduler/runStatus", params={"runCounter": run}).json()
            seen.append(answer["runStatus"])
            if answer["runStatus"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.02)  # polling a real server
        assert seen[-1] == "completed", seen
        assert set(seen) <= DOCUMENTED_STATUSES
        assert answer["runLink"] == f"{server.url}/runs/{run}"
        info = client.get(f"/api/v1/runs/{run}").json()
        assert info["runTimeParameters"] == {"load_date": "2026-01-05", "region": "emea"}
        assert len(client.get(f"/api/v1/runs/{run}/results").json()["data"]) == 11


def test_a_dropped_answer_closes_the_connection_after_creating_the_run(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        client.post("/_sim/reset")
        client.post("/_sim/faults", json={"dropAfterCreate": {"probability": 1.0}})
        try:
            with pytest.raises(httpx.TransportError):
                client.post(
                    "/scheduler/startRun", json={"runDetails": {"environmentID": "1"}}, headers=AUTH
                )
            runs = client.get("/_sim/runs").json()["data"]
            assert [run["runCounter"] for run in runs] == [1]
            assert (
                client.get(
                    "/scheduler/runStatus", params={"runCounter": 1}, headers=AUTH
                ).status_code
                == 200
            )
        finally:
            client.post("/_sim/faults", json={})


def test_rate_limits_carry_retry_after_over_the_wire(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        client.post("/_sim/faults", json={"rateLimit": {"probability": 1.0, "retryAfter": 7}})
        try:
            response = client.get("/api/v1/environments", headers=AUTH)
        finally:
            client.post("/_sim/faults", json={})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["error"]["errorString"] == "429: Too Many Requests"


@pytest.mark.parametrize(
    ("how", "exit_code"),
    # After a graceful shutdown uvicorn re-raises the signal: SIGTERM ends the process
    # as killed by it, Ctrl-C becomes the CLI's "interrupted" exit code.
    [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)],
)
def test_the_demo_server_prints_its_token_and_how_to_use_it_and_stops_on_a_signal(
    how: signal.Signals, exit_code: int
) -> None:
    served = serve()
    try:
        text = "\n".join(served.banner)
        assert "token:  sim-demo-token" in text
        assert f"url: {served.url}" in text
        assert "1 dev (Waiting), 2 prod (Waiting), 3 qa (Failed Deploy)" in text
        environments = httpx.get(
            f"{served.url}/api/v1/environments", headers={"Authorization": "Bearer sim-demo-token"}
        )
        assert [env["name"] for env in environments.json()["data"]] == ["dev", "prod", "qa"]
    finally:
        code, err = stop(served, how)
    assert code == exit_code
    assert "Traceback" not in err


def test_a_taken_port_is_a_clear_error(server: Served, tmp_path: Path) -> None:
    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "runner", "sim", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"runner sim cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_both_http_implementations_answer_and_drop_a_connection_after_creating_the_run(
    http: HttpImplementation,
) -> None:
    if http == "httptools":
        pytest.importorskip("httptools")
    sock = bind("127.0.0.1", 0)
    app = create_app(small_world(), clock=ManualClock())
    server = sim_server(app, http=http)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=url_of(sock), headers=AUTH, timeout=5) as client:
            body = {"runDetails": {"environmentID": "1"}}
            assert client.post("/scheduler/startRun", json=body).json() == {"runCounter": 1}
            client.post("/_sim/faults", json={"dropAfterCreate": {"probability": 1.0}})
            with pytest.raises(httpx.TransportError):
                client.post("/scheduler/startRun", json=body)
            client.post("/_sim/faults", json={})
            # The run was created, and the client goes on over a new connection.
            assert client.post("/scheduler/startRun", json=body).json() == {"runCounter": 3}
            log = client.get("/_sim/requests").json()["data"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert [(e["status"], e["dropped"], e["runCounter"]) for e in log] == [
        (200, False, 1),
        (200, True, 2),
        (200, False, 3),
    ]
