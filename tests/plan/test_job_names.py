"""Planning runs that name their job: resolved with the environment's jobs, compared
with baselines that hold an ID (the state) or a name (a git revision), never sent while
unresolved, and safe with whatever Coalesce calls its jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.coalesce import ClientPool, EnvironmentJobs, StartRunRequest
from runner.coalesce.models import DeployedJob
from runner.coalesce.requests import UnresolvedJobError
from runner.plan import Action, Baseline, PlanInputs, PlanRequest, make_plan, plan_specs
from runner.plan.baseline import BaselineRun
from runner.plan.online import EnvironmentFacts
from runner.plan.service import open_state_reader
from runner.render import render_plan_json, render_plan_markdown, render_plan_text
from runner.secrets import KNOWN_SECRETS, Secret
from runner.spec import RenderOptions, SpecSet, load_specs
from tests.plan.test_plan import NOW as PLANNED_AT
from tests.plan.test_plan import git
from tests.security.test_canary_matrix import ECHO_ENCODINGS

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
HEAD = 'version: 1\nenvironmentID: "5"\ncoalesce: {url: "sim://"}\n'


def _specs(runs: str) -> SpecSet:
    Path("specs").mkdir(exist_ok=True)
    Path("specs/e.yaml").write_text(HEAD + "runs:\n" + runs)
    return load_specs(["specs"], options=RenderOptions(environ={}), environ={})


def _facts(*jobs: tuple[str, str], listed: bool = True) -> dict[str, EnvironmentFacts]:
    known = tuple(DeployedJob(id=i, name=n, includeSelector="{ location: STG }") for i, n in jobs)
    return {"e": EnvironmentFacts("e", status="Waiting", jobs=EnvironmentJobs("5", known, listed))}


def _plan(
    specs: SpecSet,
    facts: dict[str, EnvironmentFacts] | None = None,
    baseline: Baseline | None = None,
) -> Any:
    return make_plan(
        PlanInputs(
            specs=specs, baseline=baseline or Baseline("state", {}), facts=facts or {}, now=NOW
        )
    )


def plan_of(**keys: Any) -> Any:
    request = PlanRequest(paths=("specs",), now=PLANNED_AT, **keys)
    return plan_specs(request, state=None, environ={}).plan


def _state_baseline(request: dict[str, Any], job_name: str | None = None) -> Baseline:
    run = BaselineRun("e", "default", "a", request, job_name=job_name)
    return Baseline("state", {"e/a": run})


def test_job_and_job_id_together_are_refused_at_their_line(run_cli, write) -> None:
    write(
        {
            "specs/both.yaml": HEAD + "runs:\n  - {name: a, job: Nightly, jobID: 7}\n",
            "specs/mixed.yaml": HEAD.replace('"5"', '"6"')
            + "defaults: {jobID: 7}\nruns:\n  - {name: a, job: Nightly}\n",
        }
    )
    result = run_cli("validate")
    assert result.code == 1
    assert "specs/both.yaml:5:15: run 'a' names its job twice, by job and by jobID: keep one" in (
        result.err
    )
    assert "specs/mixed.yaml:6:15: run 'a' names its job twice, by job and by jobID (one from " in (
        result.err
    )


@pytest.mark.parametrize("name", ["", "   ", "Nightly\nmarts", "x" * 257])
def test_a_job_name_must_be_one_printable_line(run_cli, write, name: str) -> None:
    write({"specs/e.yaml": HEAD + "runs:\n  - name: a\n    job: " + json.dumps(name) + "\n"})
    result = run_cli("validate")
    assert result.code == 1
    assert "specs/e.yaml:6:10: runs[0].job: must be a job's name as Coalesce shows it" in (
        result.err
    )


def test_a_name_alone_scopes_the_run(run_cli, write) -> None:
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, job: Nightly}\n"})
    assert run_cli("validate").code == 0  # no allNodes needed


def test_an_unresolved_request_is_never_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"runCounter": 1})

    async def fire() -> None:
        async with ClientPool(transport=httpx.MockTransport(handler)) as pool:
            client = pool.client(
                "https://app.coalescesoftware.io", Secret("tok-x"), token_source="test"
            )
            await client.fire(StartRunRequest("5", job_name="Nightly"))

    with pytest.raises(UnresolvedJobError) as caught:
        asyncio.run(fire())
    assert "would refresh the whole environment" in str(caught.value)
    assert sent == []
    # Resolved, it is the job's startRun, and the name goes nowhere.
    body = StartRunRequest("5", job_name="Nightly").resolved("7").body()
    assert body == {"runDetails": {"environmentID": "5", "jobID": "7"}}


def test_a_resolved_name_is_compared_by_id_with_the_state() -> None:
    specs = _specs("  - {name: a, job: Nightly}\n")
    before = {"runDetails": {"environmentID": "5", "jobID": "7"}}

    same = _plan(specs, _facts(("7", "Nightly")), _state_baseline(before))
    moved = _plan(specs, _facts(("8", "Nightly")), _state_baseline(before))

    assert [r.action for r in same.runs()] == [Action.UNCHANGED]
    [run] = moved.runs()
    assert run.action is Action.CHANGED
    assert [(c.field, c.before, c.after) for c in run.changes] == [("runDetails.jobID", "7", "8")]


def test_offline_an_unresolved_name_is_compared_by_name_with_the_state() -> None:
    """The state keeps the request sent (an ID) and the plan it was applied from (the
    name): offline, the same name is no change, while a baseline that gave no name (or
    another) cannot be told the same, and is shown as changed."""
    specs = _specs("  - {name: a, job: Nightly, parallelism: 4}\n")
    before = {"runDetails": {"environmentID": "5", "jobID": "7", "parallelism": 4}}

    same = _plan(specs, baseline=_state_baseline(before, job_name="Nightly"))
    other = _plan(specs, baseline=_state_baseline(before, job_name="Hourly"))
    by_id = _plan(specs, baseline=_state_baseline(before))
    whole = _plan(specs, baseline=_state_baseline({"runDetails": {"environmentID": "5"}}))

    [run] = same.runs()
    assert run.action is Action.UNCHANGED
    assert [w.code for w in run.warnings] == ["job-unresolved"]
    assert 'job: "Nightly" (not resolved: the plan did not read Coalesce)' in render_plan_text(
        other, color=False
    )
    assert [(c.field, c.before, c.after) for c in next(other.runs()).changes] == [
        ("job", "Hourly", "Nightly"),
        ("runDetails.jobID", "7", None),
    ]
    assert [(c.field, c.before, c.after) for c in next(by_id.runs()).changes] == [
        ("job", None, "Nightly"),
        ("runDetails.jobID", "7", None),
    ]
    assert [c.field for c in next(whole.runs()).changes] == ["job", "runDetails.parallelism"]


def test_the_state_gives_the_name_an_apply_was_planned_with(tmp_path: Path) -> None:
    from runner.plan import plan_to_document
    from runner.state import open_state

    specs = _specs("  - {name: a, job: Nightly}\n")
    applied = _plan(specs, _facts(("7", "Nightly")))
    store = open_state(tmp_path / "state.db")
    apply_id = store.begin_apply(
        who="t",
        host="h",
        git_commit=None,
        environments=["e"],
        argv=["apply"],
        plan=plan_to_document(applied),
    )
    [run] = applied.runs()
    run_id = store.record_intent(apply_id, "e", run.batch, "a", run.request, run.request_hash)
    store.record_fired(run_id, 1)
    store.record_status(run_id, "completed")
    store.finish_apply(apply_id, "succeeded")
    store.close()

    reader = open_state_reader(tmp_path / "state.db")
    [offline] = plan_specs(
        PlanRequest(paths=("specs",), offline=True, now=NOW), state=reader, environ={}
    ).plan.runs()
    assert offline.action is Action.UNCHANGED, offline.changes


def test_a_git_baseline_names_are_resolved_with_the_jobs_of_now(
    write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, job: Nightly}\n"})
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, job: Hourly}\n"})

    offline = plan_of(against="main", offline=True)
    [run] = offline.runs()
    assert [(c.field, c.before, c.after) for c in run.changes] == [("job", "Nightly", "Hourly")]

    async def online(environments: Any, environ: Any, transport: Any = None) -> Any:
        return _facts(("7", "Nightly"), ("8", "Hourly"))

    monkeypatch.setattr("runner.plan.service.aread_online", online)
    [run] = plan_of(against="main", offline=False).runs()  # (the facts as read online)
    assert [(c.field, c.before, c.after) for c in run.changes] == [
        ("job", "Nightly", "Hourly"),
        ("runDetails.jobID", "7", "8"),
    ]


@pytest.mark.parametrize("given", ["7 OR 1=1", "\u0661\u0662", "\u00b2"])
def test_an_id_coalesce_gives_that_is_not_a_number_is_never_planned(given: str) -> None:
    specs = _specs("  - {name: a, job: Nightly}\n")
    [run] = _plan(specs, _facts((given, "Nightly"))).runs()
    assert "jobID" not in run.request["runDetails"]
    assert [(w.code, w.fails) for w in run.warnings] == [("unknown-job", True)]


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_whatever_coalesce_calls_its_jobs_plans_and_shows_safely(tmp_path_factory, name) -> None:
    """A name from Coalesce is shown escaped (no control character reaches a terminal)
    and never changes what is sent beyond the ID it belongs to."""
    folder = tmp_path_factory.mktemp("job")
    (folder / "e.yaml").write_text(HEAD + 'runs:\n  - {name: a, jobID: "7"}\n')
    specs = load_specs([str(folder)], options=RenderOptions(environ={}), environ={})
    plan = _plan(specs, _facts(("7", name)))
    [run] = plan.runs()
    assert run.request["runDetails"] == {"environmentID": "5", "jobID": "7"}
    text = render_plan_text(plan, color=False)
    shown = [line for line in text.splitlines() if 'jobID: "7"' in line]
    assert len(shown) == 1
    assert not any(ord(c) < 32 or c == "\x7f" for c in shown[0])


@pytest.mark.parametrize("encoding", sorted(ECHO_ENCODINGS))
def test_a_secret_in_what_coalesce_calls_a_job_is_shown_in_no_view(encoding: str) -> None:
    """Job names and selectors are Coalesce's text, shown beside each jobID: one holding
    a known secret, in any encoding, is withheld in every view of the plan."""
    canary = "Canary-JobName-7d2e9f41"
    KNOWN_SECRETS.register(canary)
    echoed = ECHO_ENCODINGS[encoding](canary)
    Path("specs").mkdir(exist_ok=True)
    Path("specs/e.yaml").write_text(HEAD + 'runs:\n  - {name: a, jobID: "7"}\n')
    specs = load_specs(["specs"], options=RenderOptions(environ={}), environ={})
    job = DeployedJob(id="7", name=f"nightly {echoed}", includeSelector=f"{{ name: {echoed} }}")
    facts = {"e": EnvironmentFacts("e", status="Waiting", jobs=EnvironmentJobs("5", (job,)))}
    plan = _plan(specs, facts)

    views = [
        render_plan_text(plan, color=False),
        render_plan_json(plan),
        render_plan_markdown(plan),
    ]
    for view in views:
        assert echoed not in view and canary not in view, view
    assert "withheld" in views[0]  # said, not silently dropped
