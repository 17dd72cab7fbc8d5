"""``/_sim/``: the simulator's own endpoints, for tests and demos. No token needed.

- ``GET  /_sim/requests``  the request log (secrets redacted); ``?since=SEQ`` for newer entries
- ``GET  /_sim/counters``  request counts, requests in flight, run concurrency
- ``GET  /_sim/runs``      every run with the request it was created from
- ``POST /_sim/reset``     forget runs, log and counters; optionally load a new world
- ``GET|POST /_sim/faults`` read or replace the fault configuration
- ``GET|POST /_sim/clock``  read the clock; advance a manual one or set the speed
- ``POST /_sim/environments/{environmentID}``  change an environment's status, as a deploy
  would (``{"status": "Deploying"}``, then ``{"status": "Waiting"}``), or its deployed
  commit (``{"deployedCommit": "4f2c1e0"}``)
- ``POST /_sim/projects/{projectID}/jobs``  deploy other jobs (``{"jobs": [...]}``)
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runner.sim.clock import ManualClock, SimClock, format_time
from runner.sim.engine import Simulator
from runner.sim.runs import Run
from runner.sim.validation import bad_request
from runner.sim.world import ENVIRONMENT_STATUSES, Faults, JobSpec, WorldError, parse_world

__all__ = ["routes"]


def _simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("Invalid request body: not valid JSON") from None
    if not isinstance(value, dict):
        raise bad_request("Invalid request body: expected a JSON object")
    return value


async def requests_log(request: Request) -> Response:
    since = request.query_params.get("since", "0")
    if not (since.isascii() and since.isdigit()):
        raise bad_request(f"Invalid since: {since!r}", "Expected the seq of an earlier entry.")
    return JSONResponse({"data": _simulator(request).observations.log(int(since))})


async def counters(request: Request) -> Response:
    simulator = _simulator(request)
    now = simulator.clock.now()
    body = simulator.observations.counters()
    body["runsCreated"] = len(simulator.runs)
    body["environments"] = {
        environment_id: simulator.concurrency(environment_id, now)
        for environment_id in simulator.environments
    }
    return JSONResponse(body)


async def runs(request: Request) -> Response:
    simulator = _simulator(request)
    now = simulator.clock.now()
    return JSONResponse({"data": [_run_record(run, now) for run in simulator.all_runs()]})


def _run_record(run: Run, now: float) -> dict[str, Any]:
    started = run.start <= now and (run.canceled_at is None or run.canceled_at > run.start)
    return {
        "runCounter": run.id,
        "endpoint": run.kind,
        "environmentID": run.environment_id,
        "status": run.status(now),
        "reRunID": run.request.rerun_of,
        "createdAt": format_time(run.created),
        "startedAt": format_time(run.start) if started else None,
        "endedAt": format_time(run.finished_at) if run.is_terminal(now) else None,
        "canceledAt": format_time(run.canceled_at) if run.canceled_at is not None else None,
        "parallelism": run.request.parallelism,
        "runTimeParameters": run.runtime_parameters,
        "nodes": [
            {
                "nodeID": plan.node_id,
                "name": run.graph.nodes[plan.node_id].name,
                "location": run.graph.nodes[plan.node_id].location,
                "outcome": plan.outcome,
            }
            for plan in run.nodes
        ],
        "request": run.body,
    }


async def reset(request: Request) -> Response:
    simulator = _simulator(request)
    body = await _json_body(request)
    unknown = set(body) - {"world"}
    if unknown:
        raise bad_request(
            f"Unknown key(s) in the reset body: {', '.join(sorted(unknown))}",
            'Send {} or {"world": {...}}.',
        )
    world = simulator.world
    if "world" in body:
        try:
            world = parse_world(body["world"], source="reset body")
        except WorldError as error:
            raise bad_request("Invalid world", str(error)) from None
    try:
        simulator.load(world)
    except WorldError as error:
        raise bad_request("Invalid world", str(error)) from None
    return JSONResponse({"reset": True, "environments": sorted(simulator.environments)})


async def faults(request: Request) -> Response:
    simulator = _simulator(request)
    if request.method == "POST":
        body = await _json_body(request)
        try:
            config = Faults.model_validate(body)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: {item['msg']}"
                for item in error.errors()
            )
            raise bad_request("Invalid fault configuration", problems) from None
        simulator.faults.configure(config, simulator.seed)
    return JSONResponse(
        {"faults": simulator.faults.faults.model_dump(mode="json"), "seed": simulator.faults.seed}
    )


async def clock(request: Request) -> Response:
    simulator = _simulator(request)
    if request.method == "POST":
        body = await _json_body(request)
        _change_clock(simulator, body)
    return JSONResponse(simulator.clock.describe())


def _change_clock(simulator: Simulator, body: dict[str, Any]) -> None:
    current = simulator.clock
    advance, speed = body.get("advance"), body.get("speed")
    if advance is not None:
        if not isinstance(current, ManualClock):
            raise bad_request(
                "Only a manual clock can be advanced", "This simulator runs on a SimClock."
            )
        if not _is_number(advance) or advance < 0:
            raise bad_request("Invalid advance: expected a number of seconds, 0 or more")
        current.advance(float(advance))
    if speed is not None:
        if not isinstance(current, SimClock):
            raise bad_request(
                "Only a SimClock has a speed", "This simulator runs on a manual clock."
            )
        if not _is_number(speed) or speed <= 0:
            raise bad_request("Invalid speed: expected a number greater than 0")
        current.set_speed(float(speed))
    if advance is None and speed is None:
        raise bad_request("Nothing to change", 'Send {"advance": SECONDS} or {"speed": FACTOR}.')


async def environment(request: Request) -> Response:
    """What a deploy shows of an environment: ``{"status": "Deploying"}``, and the
    commit it deployed, ``{"deployedCommit": "4f2c1e0"}`` (either or both)."""
    simulator = _simulator(request)
    environment_id = request.path_params["environment_id"]
    body = await _json_body(request)
    status, commit = body.get("status"), body.get("deployedCommit")
    if status is None and commit is None:
        raise bad_request(
            "Nothing to change", 'Send {"status": STATUS} and/or {"deployedCommit": "SHA"}.'
        )
    if status is not None and status not in ENVIRONMENT_STATUSES:
        raise bad_request(
            f"Invalid status: {status!r}", f"Expected one of: {', '.join(ENVIRONMENT_STATUSES)}."
        )
    if commit is not None and not isinstance(commit, str):
        raise bad_request(f"Invalid deployedCommit: {commit!r}", "Send a string.")
    if environment_id not in simulator.environments:
        raise bad_request(f"No environment {environment_id!r} in this world")
    if status is not None:
        simulator.set_environment_status(environment_id, status)
    if commit is not None:
        simulator.set_deployed_commit(environment_id, commit)
    shown = simulator.environments[environment_id]
    return JSONResponse(
        {"id": environment_id, "status": shown.status, "deployedCommit": shown.deployedCommit}
    )


async def project_jobs(request: Request) -> Response:
    """Deploy other jobs for a project (``{"jobs": [{"id": "7", "name": ...,
    "include": ..., "exclude": ...}]}``): renamed, removed or renumbered jobs."""
    simulator = _simulator(request)
    project_id = request.path_params["project_id"]
    if project_id not in simulator.projects:
        raise bad_request(f"No project {project_id!r} in this world")
    raw = (await _json_body(request)).get("jobs")
    if not isinstance(raw, list):
        raise bad_request("Invalid jobs", 'Send {"jobs": [{"id": "7", "name": "Nightly"}]}.')
    try:
        jobs = [JobSpec.model_validate(job) for job in raw]
        simulator.deploy_jobs(project_id, jobs)
    except (ValidationError, WorldError) as error:
        raise bad_request(f"Invalid jobs: {error}") from None
    return JSONResponse({"project": project_id, "jobs": [job.id for job in jobs]})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def routes() -> list[Route]:
    return [
        Route("/_sim/requests", requests_log, methods=["GET"]),
        Route("/_sim/counters", counters, methods=["GET"]),
        Route("/_sim/runs", runs, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/clock", clock, methods=["GET", "POST"]),
        Route("/_sim/environments/{environment_id}", environment, methods=["POST"]),
        Route("/_sim/projects/{project_id}/jobs", project_jobs, methods=["POST"]),
    ]
