"""From a reviewed plan to the jobs apply runs: the planned requests, with their secrets.

The plan holds only secret-free requests. The real request of each run comes from the
specs, loaded again with secrets, and must render to exactly the planned request (same
hash); anything else means the plan no longer says what would be sent, and is refused.
"""

from __future__ import annotations

from runner.apply.model import BatchJob, EnvironmentJob, RunJob
from runner.coalesce.requests import StartRunRequest
from runner.errors import RunnerError, StalePlanError, quoted
from runner.plan import Action, EnvironmentPlan, Plan, PlannedRun, request_hash
from runner.secrets import Secret
from runner.spec import EnvironmentSpec, RunSpec, SpecSet


def jobs_from_plan(
    plan: Plan, specs: SpecSet, *, changed_only: bool = False
) -> list[EnvironmentJob]:
    by_name = {env.name: env for env in specs.environments}
    jobs: list[EnvironmentJob] = []
    for env_plan in plan.environments:
        wanted = {
            run.identity
            for run in env_plan.runs()
            if run.fires and (not changed_only or run.action in (Action.NEW, Action.CHANGED))
        }
        if not wanted:
            continue
        spec = by_name.get(env_plan.name)
        if spec is None:
            raise StalePlanError(
                f"the plan fires runs in {quoted(env_plan.name)}, whose spec is gone"
            )
        check_batches(env_plan, spec)
        runs = {run.identity: run for run in spec.runs()}
        batches: list[BatchJob] = []
        for batch in env_plan.batches:
            chosen = [r for r in batch.runs if r.identity in wanted]
            if chosen:
                batches.append(
                    BatchJob(
                        batch.name,
                        batch.max_concurrent,
                        batch.on_failure,
                        tuple(_job(runs.get(r.identity), r) for r in chosen),
                    )
                )
        jobs.append(environment_job(spec, tuple(batches)))
    return jobs


def check_batches(env_plan: EnvironmentPlan, spec: EnvironmentSpec) -> None:
    """The plan's batches must be the spec's: the same order, limits and onFailure, each
    run in its own batch. Spec files are checked by hash, requests by rendering; this
    covers what a plan file says about order, so an edited plan file cannot swap batches
    or turn ``onFailure: stop`` into ``continue``. (A plan made with ``--run`` holds only
    some batches and runs: they must still be where the spec puts them.)"""
    position = {batch.name: (index, batch) for index, batch in enumerate(spec.batches)}
    last = -1
    for batch in env_plan.batches:
        found = position.get(batch.name)
        if found is None:
            raise _tampered(env_plan.name, f"its batch {quoted(batch.name)} is not in the spec")
        index, spec_batch = found
        if index <= last:
            raise _tampered(env_plan.name, "its batches are not in the spec's order")
        last = index
        if (batch.max_concurrent, batch.on_failure) != (
            spec_batch.max_concurrent,
            spec_batch.on_failure,
        ):
            raise _tampered(
                env_plan.name,
                f"batch {quoted(batch.name)} has other maxConcurrent/onFailure than the spec",
            )
        names = {run.name for run in spec_batch.runs}
        for run in batch.runs:
            if run.name not in names or run.batch != batch.name:
                raise _tampered(
                    env_plan.name,
                    f"run {quoted(run.name)} is not in batch {quoted(batch.name)} of the spec",
                )


def _tampered(environment: str, what: str) -> StalePlanError:
    return StalePlanError(
        f"the plan does not match the spec of {quoted(environment)}: {what}. Plan files are not "
        "to be edited; nothing was fired",
        hint="make a new plan (runner plan --out ...) and review it again",
    )


def _job(spec_run: RunSpec | None, planned: PlannedRun) -> RunJob:
    identity = planned.identity
    if spec_run is None:
        raise StalePlanError(f"the plan fires {quoted(identity)}, which the specs no longer have")
    request = _with_planned_job(spec_run.request, planned)
    redacted = request.redacted()
    digest = request_hash(redacted)
    if digest != planned.request_hash:
        raise StalePlanError(
            f"{quoted(identity)} renders to a different request than the plan shows "
            "(a --var, RUNNER_VAR_* value or a spec changed?)",
            hint="make a new plan and review it again",
        )
    return RunJob(
        environment=spec_run.environment,
        batch=spec_run.batch,
        name=spec_run.name,
        request=request,
        redacted=redacted,
        request_hash=digest,
        timeout=spec_run.timeout,
        if_running=spec_run.if_running,
    )


def _with_planned_job(request: StartRunRequest, planned: PlannedRun) -> StartRunRequest:
    """The spec's request with the job ID the plan resolved its job name to (apply checks
    with Coalesce that the name still means that job before firing)."""
    if request.job_name is None:
        return request
    job_id = planned.request.get("runDetails", {}).get("jobID")
    problem = next((w.message for w in planned.warnings if w.code == "unknown-job"), None)
    if job_id is None and problem is not None:
        raise RunnerError(
            f"{quoted(planned.identity)} cannot be fired, so nothing was: {problem}",
            hint=f"fix job: in {planned.source or 'the spec'}",
        )
    if job_id is None:
        raise RunnerError(
            f"{quoted(planned.identity)} names its job {quoted(request.job_name)}, which the "
            "plan did not resolve to a job ID (it was made without reading Coalesce), so "
            "nothing was fired",
            hint="make the plan online (runner plan without --offline, with the environment's "
            "token set) and review it again",
        )
    job = planned.job
    if job is None or not job.by_name or job.name != request.job_name or job.id != job_id:
        raise _tampered(
            planned.environment,
            f"run {quoted(planned.name)} fires job {quoted(job_id)}, which is not the job its "
            "plan resolved the name to",
        )
    return request.resolved(str(job_id))


def environment_job(spec: EnvironmentSpec, batches: tuple[BatchJob, ...]) -> EnvironmentJob:
    return EnvironmentJob(
        name=spec.name,
        environment_id=spec.environment_id,
        url=spec.url,
        token=token_of(spec),
        token_source=spec.token_source,
        batches=batches,
    )


def token_of(spec: EnvironmentSpec) -> Secret:
    """The environment's Coalesce token, or an error that says where it should come from."""
    token = spec.usable_token
    if token is None:
        raise RunnerError(
            f"no Coalesce token for {quoted(spec.name)}: {spec.token_source}",
            hint="export the token (Coalesce app > Deploy > Generate Access Token) and retry",
        )
    return token
