"""What the operations share: reading specs for an environment's URL and token, a
client per environment, recording how a run ended, and selecting runs by name."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.apply.jobs import token_of
from runner.apply.model import (
    FailedNode,
)
from runner.apply.results import failed_nodes
from runner.apply.service import latest_records
from runner.coalesce import (
    ClientPool,
    CoalesceClient,
)
from runner.errors import RunnerError, quoted, quoted_list
from runner.runtime import Runtime
from runner.spec import EnvironmentSpec, RenderOptions, SpecSet, load_specs
from runner.state import (
    RunRecord,
    RunStatus,
    StateStore,
    utc_now,
)

Clock = Callable[[], dt.datetime]

# The statuses Coalesce reports for a run that has not ended.
SERVER_ACTIVE = frozenset({RunStatus.WAITING_TO_RUN.value, RunStatus.RUNNING.value})


def load_specs_for_operations(
    paths: Sequence[str | Path],
    *,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> SpecSet:
    """The specs, for the URL, token and run settings of environments already applied.

    Secrets are not required here: each operation checks those it needs (the token of
    an environment it calls, the credentials of a run it reruns) and names the missing
    ones. A spec with an error still fails the whole load, as everywhere else.
    """
    environ = os.environ if environ is None else environ
    options = RenderOptions(
        variables=dict(variables or {}),
        environ=environ,
        now=now or utc_now(),
        require_secrets=False,
    )
    return load_specs(paths, options=options, environ=environ)


SpecSource = SpecSet | Callable[[], SpecSet]


def specs_of(source: SpecSource) -> SpecSet:
    """The specs, loading them if ``source`` is a loader."""
    return source if isinstance(source, SpecSet) else source()


def environment_spec(specs: SpecSet, environment: str) -> EnvironmentSpec:
    for spec in specs.environments:
        if spec.name == environment:
            return spec
    known = quoted_list(sorted(s.name for s in specs.environments)) or "none"
    raise RunnerError(
        f"no spec for environment {quoted(environment)} among the specs read (found: {known})",
        hint="pass the folder or file that holds its spec (the default is specs/)",
    )


def client_for(pool: ClientPool, spec: EnvironmentSpec) -> CoalesceClient:
    return pool.client(spec.url, token_of(spec), token_source=spec.token_source)


def fired_environment_id(record: RunRecord, spec_environment_id: str) -> str:
    """The Coalesce environment a run was fired in: the journal's request says it; the
    spec's id is the fallback."""
    details = record.request.get("runDetails")
    if isinstance(details, Mapping) and details.get("environmentID"):
        return str(details["environmentID"])
    return spec_environment_id


def run_async(runtime: Runtime, work: Callable[[ClientPool], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with runtime.pool() as pool:
            return await work(pool)

    return asyncio.run(main())


async def ended_details(client: CoalesceClient, run_counter: int, status: str) -> list[FailedNode]:
    """The failed nodes of a run that did not complete; best effort (a failure to read
    them must not hide how the run ended). Its link came with the status that said it
    ended: no request is made for it."""
    if status == RunStatus.COMPLETED:
        return []
    with contextlib.suppress(RunnerError):
        return failed_nodes(await client.run_results(run_counter))
    return []


def record_end(
    store: StateStore,
    record: RunRecord,
    status: str,
    nodes: Sequence[FailedNode],
    link: str | None,
    now: dt.datetime,
    message: str | None = None,
) -> None:
    if link and not record.run_link and record.run_counter is not None:
        # Same runCounter: record_fired only adds the link.
        store.record_fired(record.run_id, record.run_counter, link)
    store.record_status(
        record.run_id,
        status,
        ended_at=now,
        failed_nodes=[n.as_dict() for n in nodes] or None,
        message=message,
    )


def latest_by_identity(records: Iterable[RunRecord]) -> list[RunRecord]:
    return list(latest_records(records).values())


def check_patterns(patterns: Sequence[str]) -> None:
    bad = [p for p in patterns if "/" not in p]
    if bad:
        raise RunnerError(
            f"a run is named ENV/RUN, not {', '.join(repr(p) for p in bad)}",
            hint="e.g. prod/orders, or prod/* for every run of prod",
        )
