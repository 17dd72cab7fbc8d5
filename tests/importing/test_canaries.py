"""No secret leaves ``runner import``: canary credentials fired into the simulator's run
history, and a Coalesce that returns them anyway (in ``userCredentials``, and inside job
names, selectors, parameters and the environment's name), appear in no output, file,
error or log record, in any encoding."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.runtime
from runner.sim import SimApp, create_app, parse_world
from tests.conftest import CliResult
from tests.security.test_canary_matrix import KEY, PASSPHRASE, PASSWORD, TOKEN, WORLD
from tests.security.test_canary_matrix import encoded_leaks_in as leaks

BASIC = {
    "snowflakeAuthType": "Basic",
    "snowflakeUsername": "SVC",
    "snowflakePassword": PASSWORD,
}
KEYPAIR = {
    "snowflakeAuthType": "KeyPair",
    "snowflakeUsername": "SVC",
    "snowflakeKeyPairKey": KEY,
    "snowflakeKeyPairPass": PASSPHRASE,
}
RETURNED = {"snowflakePassword": PASSWORD, "snowflakeKeyPairKey": KEY, "privateKeyPass": PASSPHRASE}


def _world() -> Any:
    project = {
        **WORLD["projects"][0],
        "jobs": [{"id": "1", "name": "quick", "include": "{ location: QUICK }"}],
    }
    return parse_world({**WORLD, "projects": [project]})


class Leaky(httpx.AsyncBaseTransport):
    """The simulator, behind a Coalesce that returns the secrets it was sent, and worse."""

    def __init__(self, app: SimApp, leak: bool) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.leak = leak

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.leak or request.method != "GET":
            return response
        body = json.loads(await response.aread())
        path = request.url.path
        if path == "/api/v1/runs":
            for index, item in enumerate(body["data"]):
                item["userCredentials"] = {**item.get("userCredentials", {}), **RETURNED}
                if index % 3 == 1:
                    item["runTimeParameters"] = {"pw": f"x {PASSWORD} y"}
                if index % 3 == 2:
                    item["runDetails"]["includeNodesSelector"] = f"{{ name: {TOKEN} }}"
        elif path.endswith("/jobs"):
            body["data"].append({"id": "2", "name": f"job {PASSWORD}", "includeSelector": "{ * }"})
        elif path.startswith("/api/v1/environments/"):
            body["name"] = f"env {PASSPHRASE}"
        return httpx.Response(response.status_code, json=body)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimApp]:
    app = create_app(_world())
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)

    async def fill() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sim", headers=headers
        ) as client:
            for environment, credentials in (("5", BASIC), ("6", KEYPAIR)):
                for details in (
                    {"jobID": "1"},
                    {"includeNodesSelector": "{ location: QUICK }"},
                    {"includeNodesSelector": "{ location: SLOW }"},
                    {},
                ):
                    body = {
                        "runDetails": {"environmentID": environment, **details},
                        "userCredentials": credentials,
                        "parameters": {"region": "emea"},
                    }
                    answer = await client.post("/scheduler/startRun", json=body)
                    assert answer.status_code == 200, answer.text

    asyncio.run(fill())
    yield app


@pytest.mark.parametrize("leak", [False, True], ids=["faithful", "returns-secrets"])
def test_no_canary_leaves_runner_import(
    app: SimApp,
    leak: bool,
    run_cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(runner.runtime, "SIMULATOR", Leaky(app, leak))
    caplog.set_level(logging.DEBUG)
    results = []
    for environment in ("5", "6"):
        base = ("import", environment, "--url", "sim://")
        results += [
            run_cli(*base, "--name", f"e{environment}"),
            run_cli(*base, "--name", f"e{environment}"),  # refused: the file exists
            run_cli(*base, "--name", f"e{environment}", "--force", "--format", "json"),
            run_cli(*base, "--out", "-"),
            run_cli(*base, "--out", "-", "--format", "json"),
            run_cli("validate", f"specs/e{environment}.yaml"),
            run_cli("plan", f"specs/e{environment}.yaml", "--format", "json"),
        ]
    assert [r.code for r in results] == [0, 1, 0, 0, 0, 0, 0] * 2, [r.text for r in results]
    found = {f"result {i}": leaks(r.text) for i, r in enumerate(results) if leaks(r.text)}
    for path in tmp_path.rglob("*"):
        if path.is_file() and leaks(path.read_bytes().decode("utf-8", "replace")):
            found[str(path)] = leaks(path.read_bytes().decode("utf-8", "replace"))
    records = "\n".join(record.getMessage() for record in caplog.records)
    if leaks(records):
        found["log records"] = leaks(records)
    assert not found, found

    spec = Path("specs/e6.yaml").read_text(encoding="utf-8")
    assert "{{ secret('SNOWFLAKE_PRIVATE_KEY') }}" in spec
    if leak:
        document = json.loads(results[2].out)
        reasons = {item["reason"] for item in document["leftOut"]}
        assert reasons == {
            "a parameter's value holds a credential",
            "its include selector holds a credential",
        }
        assert "job-2" in [run["name"] for run in document["runs"]]
        assert document["spec"]["name"] == "e5"
