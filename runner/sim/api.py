"""The Coalesce endpoints: scheduler (start, status, rerun, cancel) and the read API."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runner.coalesce.models import StartRunResponse
from runner.selectors import SelectorError
from runner.sim import responses
from runner.sim.engine import Simulator
from runner.sim.listing import (
    BY_ID_OR_NAME,
    RUN_ORDERS,
    environment_ordering,
    job_ordering,
    node_ordering,
    run_matches,
    run_ordering,
)
from runner.sim.observe import ParsedBody
from runner.sim.paging import envelope, page_query, paginate
from runner.sim.runs import Run, RunRequest
from runner.sim.selection import parse
from runner.sim.validation import (
    ApiError,
    bad_request,
    check_environment_status,
    digits,
    force_flag,
    json_object,
    object_body,
    optional_selector_text,
    parallelism,
    parameters,
    required_object,
    user_credentials,
)
from runner.sim.world import EnvironmentSpec

__all__ = ["AUTH_ERROR", "PARSED_BODY_KEY", "RUN_CREATED_KEY", "routes"]

AUTH_ERROR = "401: Unable to authenticate, please ensure your token is valid."
#: Where a handler leaves the number of the run it created, for the request log.
RUN_CREATED_KEY = "runner.sim.runCounter"
#: Where the request log leaves the body it parsed (a :class:`ParsedBody` of the UTF-8
#: text), so that a handler does not parse it again.
PARSED_BODY_KEY = "runner.sim.parsedBody"
DEFAULT_PARALLELISM = 16
_START_EXAMPLE = '{"runDetails": {"environmentID": "1"}}'


def _simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


def _authenticate(request: Request) -> Simulator:
    simulator = _simulator(request)
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, AUTH_ERROR, "The request has no Authorization header.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, AUTH_ERROR, "Expected an Authorization header of the form: Bearer <token>."
        )
    if token.strip() not in simulator.world.tokens:
        raise ApiError(401, AUTH_ERROR, "The token is not valid.")
    return simulator


async def _json_body(request: Request, *, example: str) -> tuple[dict[str, Any], ParsedBody]:
    """The body as a JSON object (or a 400), and its parse with the redacted copy."""
    parsed = request.scope.get(PARSED_BODY_KEY)
    if not isinstance(parsed, ParsedBody):
        parsed = ParsedBody(json_object(await request.body(), example=example))
    return object_body(parsed.value, example=example), parsed


def _created(request: Request, run: Run) -> Response:
    request.scope[RUN_CREATED_KEY] = run.id
    # The model writes its own JSON: the bytes JSONResponse would send for its one
    # integer, without building a generic encoder on every call.
    answer = StartRunResponse(runCounter=run.id)
    return Response(
        answer.model_dump_json(by_alias=True, exclude_none=True), media_type="application/json"
    )


# ----------------------------------------------------------------------- scheduler


async def start_run(request: Request) -> Response:
    simulator = _authenticate(request)
    body, parsed = await _json_body(request, example=_START_EXAMPLE)
    details = required_object(body, "runDetails", example='"runDetails": {"environmentID": "1"}')
    environment = _environment(simulator, details.get("environmentID"), "runDetails.environmentID")
    job_id = digits(details.get("jobID"), "runDetails.jobID", required=False)
    graph = simulator.graph(environment)
    job = None
    if job_id is not None:
        job = graph.jobs.get(job_id)
        if job is None:
            raise bad_request(
                f"Job {job_id} not found in environment {environment.id} ({environment.name})",
                f"Jobs of this environment: {_listing(graph.jobs.items())}.",
            )
    include = _selector(details, "includeNodesSelector")
    exclude = _selector(details, "excludeNodesSelector")
    run_request = RunRequest(
        environment_id=environment.id,
        job=job,
        include=include,
        exclude=exclude,
        parallelism=parallelism(details, DEFAULT_PARALLELISM),
        force=force_flag(details),
        credentials=user_credentials(body),
        parameters=parameters(body),
    )
    check_environment_status(environment, run_request.force)
    return _created(request, simulator.start_run(run_request, parsed.redacted))


async def rerun(request: Request) -> Response:
    simulator = _authenticate(request)
    body, parsed = await _json_body(request, example='{"runDetails": {"runID": "12"}}')
    details = required_object(body, "runDetails", example='"runDetails": {"runID": "12"}')
    original = _run_or_400(simulator, details.get("runID"), "runDetails.runID")
    now = simulator.clock.now()
    if not original.is_terminal(now):
        raise bad_request(
            f"Run {original.id} is still {original.status(now)}; only a finished run can be rerun",
            "Wait for the run to end (or cancel it), then rerun it.",
        )
    if not original.unfinished_nodes(now):
        raise bad_request(
            f"Run {original.id} completed every node; there is nothing to rerun",
            "Rerun runs only the nodes that failed, were skipped or were canceled.",
        )
    environment = simulator.environments[original.environment_id]
    run_request = RunRequest(
        environment_id=environment.id,
        job=original.request.job,
        include=original.request.include,
        exclude=original.request.exclude,
        parallelism=parallelism(details, original.request.parallelism),
        force=force_flag(details),
        credentials=user_credentials(body),
        parameters=parameters(body),
        rerun_of=original.id,
    )
    check_environment_status(environment, run_request.force)
    return _created(request, simulator.rerun(original, run_request, parsed.redacted))


async def cancel_run(request: Request) -> Response:
    simulator = _authenticate(request)
    body, _ = await _json_body(request, example='{"runID": 12, "environmentID": "1"}')
    run = _run_or_400(simulator, body.get("runID"), "runID")
    environment_id = digits(body.get("environmentID"), "environmentID", required=False)
    if environment_id is not None and environment_id != run.environment_id:
        raise bad_request(
            f"Run {run.id} belongs to environment {run.environment_id}, not {environment_id}",
            "Send the environmentID of the run, or leave it out.",
        )
    now = simulator.clock.now()
    if run.is_terminal(now):
        raise bad_request(
            f"Run {run.id} has already ended ({run.status(now)}); there is nothing to cancel"
        )
    simulator.cancel(run)
    return Response(status_code=204)


async def run_status(request: Request) -> Response:
    simulator = _authenticate(request)
    run = _run_or_400(simulator, request.query_params.get("runCounter"), "runCounter")
    link = _run_link(request, simulator, run.id)
    return JSONResponse(responses.run_status(run, simulator.clock.now(), link))


def _run_link(request: Request, simulator: Simulator, run_id: int) -> str:
    if simulator.world.host:
        return f"{simulator.world.host.rstrip('/')}/runs/{run_id}"
    return f"{str(request.base_url).rstrip('/')}/runs/{run_id}"


# ----------------------------------------------------------------------- runs


async def list_runs(request: Request) -> Response:
    simulator = _authenticate(request)
    params = request.query_params
    query = page_query(params, fields=RUN_ORDERS, default_descending=True)
    now = simulator.clock.now()
    environment_id = params.get("environmentID")
    candidates = (
        simulator.all_runs() if environment_id is None else simulator.runs_of(environment_id)
    )
    runs = [run for run in candidates if run_matches(run, params, now)]
    page, next_cursor, total = paginate(runs, query, run_ordering(query.order_by, now))
    view = responses.run_info if query.detail else responses.run_summary
    return JSONResponse(envelope([view(run, now) for run in page], query, next_cursor, total))


async def get_run(request: Request) -> Response:
    simulator = _authenticate(request)
    run = _run_or_404(simulator, request.path_params["id"])
    return JSONResponse(responses.run_info(run, simulator.clock.now()))


async def get_run_results(request: Request) -> Response:
    simulator = _authenticate(request)
    run = _run_or_404(simulator, request.path_params["id"])
    environment = simulator.environments[run.environment_id]
    now = simulator.clock.now()
    return JSONResponse(responses.run_results(run, now, environment, simulator.seed))


def _run_or_400(simulator: Simulator, value: object, field: str) -> Run:
    run_id = digits(value, field)
    assert run_id is not None
    run = simulator.run(int(run_id))
    if run is None:
        raise bad_request(f"Run {run_id} not found", _known_runs(simulator))
    return run


def _run_or_404(simulator: Simulator, text: str) -> Run:
    if not (text.isascii() and text.isdigit()):
        raise bad_request(f"Invalid run ID: {text!r}", "A run ID is the runCounter, a number.")
    run = simulator.run(int(text))
    if run is None:
        raise ApiError(404, f"Run {text} not found", _known_runs(simulator))
    return run


def _known_runs(simulator: Simulator) -> str:
    count = len(simulator.runs)
    if not count:
        return "No run has been started yet."
    return f"Known runs are 1 to {count}."


# ----------------------------------------------------------------------- environments


def _environment(simulator: Simulator, value: object, field: str) -> EnvironmentSpec:
    environment_id = digits(value, field)
    assert environment_id is not None
    environment = simulator.environments.get(environment_id)
    if environment is None:
        raise bad_request(
            f"Environment {environment_id} not found",
            f"Known environments: {_listing((e.id, e) for e in simulator.environments.values())}.",
        )
    return environment


def _listing(items: Any) -> str:
    shown = [f"{item_id} ({item.name})" for item_id, item in items]
    return ", ".join(shown) if shown else "none"


def _selector(details: dict[str, Any], key: str) -> str | None:
    text = optional_selector_text(details, key)
    if text is None:
        return None
    try:
        parse(text)
    except SelectorError as error:
        caret = " " * (max(error.column, 1) - 1) + "^"
        raise bad_request(
            f"Invalid {key}: {error.message} (column {error.column})",
            f"{text}\n{caret}",
        ) from None
    return text


async def list_environments(request: Request) -> Response:
    simulator = _authenticate(request)
    query = page_query(request.query_params, fields=BY_ID_OR_NAME, default_descending=False)
    now = simulator.clock.now()
    environments = list(simulator.environments.values())
    page, next_cursor, total = paginate(environments, query, environment_ordering(query.order_by))
    data = [_environment_view(simulator, e, now, query.detail) for e in page]
    return JSONResponse(envelope(data, query, next_cursor, total))


def _environment_view(
    simulator: Simulator, environment: EnvironmentSpec, now: float, detail: bool
) -> dict[str, Any]:
    status = simulator.environment_status(environment, now)
    if not detail:
        return responses.environment_summary(environment, status)
    graph = simulator.graph(environment)
    locations = list(dict.fromkeys(node.location for node in graph.nodes.values()))
    return responses.environment_detail(environment, status, locations)


def _environment_or_404(simulator: Simulator, text: str) -> EnvironmentSpec:
    environment = simulator.environments.get(text)
    if environment is None:
        raise ApiError(
            404,
            f"Environment {text} not found",
            f"Known environments: {_listing((e.id, e) for e in simulator.environments.values())}.",
        )
    return environment


async def get_environment(request: Request) -> Response:
    simulator = _authenticate(request)
    environment = _environment_or_404(simulator, request.path_params["id"])
    view = _environment_view(simulator, environment, simulator.clock.now(), detail=True)
    return JSONResponse(view)


async def list_nodes(request: Request) -> Response:
    simulator = _authenticate(request)
    environment = _environment_or_404(simulator, request.path_params["id"])
    query = page_query(request.query_params, fields=BY_ID_OR_NAME, default_descending=False)
    graph = simulator.graph(environment)
    nodes = list(graph.nodes.values())
    page, next_cursor, total = paginate(nodes, query, node_ordering(query.order_by))
    data = [responses.node_view(node, environment, graph.nodes, query.detail) for node in page]
    return JSONResponse(envelope(data, query, next_cursor, total))


async def list_jobs(request: Request) -> Response:
    """The jobs deployed in an environment: those of its project."""
    simulator = _authenticate(request)
    environment = _environment_or_404(simulator, request.path_params["id"])
    query = page_query(request.query_params, fields=BY_ID_OR_NAME, default_descending=False)
    if not simulator.world.listsJobs:
        raise ApiError(404, "Not Found")  # as a Coalesce without the jobs list answers
    jobs = list(simulator.graph(environment).jobs.values())
    page, next_cursor, total = paginate(jobs, query, job_ordering(query.order_by))
    return JSONResponse(
        envelope([responses.job_view(job) for job in page], query, next_cursor, total)
    )


async def get_job(request: Request) -> Response:
    """One job deployed in an environment."""
    simulator = _authenticate(request)
    environment = _environment_or_404(simulator, request.path_params["id"])
    job = simulator.graph(environment).jobs.get(request.path_params["job_id"])
    if job is None:
        raise ApiError(404, f"Job {request.path_params['job_id']} not found")
    return JSONResponse(responses.job_view(job))


def routes() -> list[Route]:
    return [
        Route("/scheduler/startRun", start_run, methods=["POST"]),
        Route("/scheduler/runStatus", run_status, methods=["GET"]),
        Route("/scheduler/rerun", rerun, methods=["POST"]),
        Route("/scheduler/cancelRun", cancel_run, methods=["POST"]),
        Route("/api/v1/runs", list_runs, methods=["GET"]),
        Route("/api/v1/runs/{id}", get_run, methods=["GET"]),
        Route("/api/v1/runs/{id}/results", get_run_results, methods=["GET"]),
        Route("/api/v1/environments", list_environments, methods=["GET"]),
        Route("/api/v1/environments/{id}", get_environment, methods=["GET"]),
        Route("/api/v1/environments/{id}/nodes", list_nodes, methods=["GET"]),
        Route("/api/v1/environments/{id}/jobs", list_jobs, methods=["GET"]),
        Route("/api/v1/environments/{id}/jobs/{job_id}", get_job, methods=["GET"]),
    ]
