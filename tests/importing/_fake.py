"""A scripted Coalesce for the import tests: an environment, its jobs and its run
history (each run given as Coalesce's ``detail=true`` item), served through
``httpx.MockTransport``; and what a spec makes of it once written."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runner.coalesce import CoalesceClient, EnvironmentJobs
from runner.coalesce.models import DeployedJob, Environment, RunInfo
from runner.importing import History, ImportedSpec, aimport_environment, spec_yaml
from runner.plan import PlanRequest, aplan_specs, plan_specs
from runner.secrets import Secret

URL = "https://app.coalescesoftware.io"
TOKEN = "CANARY-import-token-5e2a"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def at(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def run(
    run_id: int,
    *,
    days_ago: float = 1.0,
    credentials: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A history item: ``details`` are its runDetails (besides environmentID)."""
    return {
        "id": run_id,
        "runType": "refresh",
        "runStatus": "completed",
        "runStartTime": at(days_ago),
        "runDetails": {"environmentID": "12", **details},
        "runTimeParameters": parameters if parameters is not None else {},
        "userCredentials": credentials
        if credentials is not None
        else {"snowflakeAuthType": "Basic", "snowflakeUsername": "SVC"},
    }


@dataclass
class FakeCoalesce:
    runs: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] | None = field(default_factory=list)
    name: str = "Production"
    page_size: int = 2
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/v1/environments/12":
            return httpx.Response(200, json={"id": "12", "name": self.name, "status": "Waiting"})
        if path == "/api/v1/environments/12/jobs":
            if self.jobs is None:
                return httpx.Response(404, json={"error": {"errorString": "Not found"}})
            return httpx.Response(200, json={"data": self.jobs})
        if path == "/api/v1/runs":
            return self._runs(request)
        return httpx.Response(404, json={"error": {"errorString": f"no {path}"}})

    def _runs(self, request: httpx.Request) -> httpx.Response:
        ordered = sorted(self.runs, key=lambda item: item["runStartTime"], reverse=True)
        start = int(request.url.params.get("startingFrom", "0"))
        page = ordered[start : start + self.page_size]
        body: dict[str, Any] = {"data": page, "orderBy": "runStartTime"}
        if start + self.page_size < len(ordered):
            body["next"] = str(start + self.page_size)
        # JSON's own escapes, as a server writes them: a lone surrogate is "\\ud800".
        return httpx.Response(
            200, content=json.dumps(body), headers={"content-type": "application/json"}
        )

    def client(self) -> CoalesceClient:
        return CoalesceClient(
            URL, Secret(TOKEN), transport=httpx.MockTransport(self.handle), environ={}
        )

    async def imported(self, **options: Any) -> ImportedSpec:
        async with self.client() as client:
            return await aimport_environment(client, "12", url=URL, now=NOW, **options)


async def planned_requests(text: str, folder: Path) -> dict[str, dict[str, Any]]:
    """Write the spec, plan it offline, and give each run's request without its
    credentials."""
    request = _plan_request(text, folder)
    result = await aplan_specs(request, state=None, environ={"COALESCE_TOKEN": TOKEN})
    return _requests(result.plan)


def planned_requests_now(text: str, folder: Path) -> dict[str, dict[str, Any]]:
    """:func:`planned_requests` outside an event loop."""
    request = _plan_request(text, folder)
    return _requests(plan_specs(request, state=None, environ={"COALESCE_TOKEN": TOKEN}).plan)


def _plan_request(text: str, folder: Path) -> PlanRequest:
    path = folder / "specs" / "imported.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return PlanRequest(paths=(str(path),), offline=True, now=NOW)


#: The credentials of the last spec planned (secrets shown as "(secret)").
LAST_CREDENTIALS: dict[str, Any] = {}


def _requests(plan: Any) -> dict[str, dict[str, Any]]:
    requests = {}
    for planned in plan.runs():
        request = json.loads(json.dumps(planned.request))
        LAST_CREDENTIALS.clear()
        LAST_CREDENTIALS.update(request.pop("userCredentials", None) or {})
        requests[planned.name] = request
    return requests


def history(*items: dict[str, Any], jobs: tuple[DeployedJob, ...] = ()) -> History:
    """A history read already: for tests that need no client."""
    return History(
        environment=Environment(id="12", name="Production"),
        jobs=EnvironmentJobs("12", jobs),
        runs=tuple(RunInfo.model_validate(item) for item in items),
        since=NOW - dt.timedelta(days=14),
    )


def written(spec: ImportedSpec) -> str:
    return spec_yaml(spec, command="runner import 12")
