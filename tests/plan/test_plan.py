"""Plans: actions against both baselines, warnings, online facts, plan files."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from runner.coalesce.models import EnvironmentNode
from runner.errors import RunnerError, StalePlanError
from runner.plan import (
    Action,
    Filters,
    PlanRequest,
    check_fresh,
    plan_specs,
    read_plan_file,
    write_plan_file,
)
from runner.plan.document import plan_to_document
from runner.plan.online import EnvironmentFacts, build_graph
from runner.plan.service import open_state_reader
from runner.state import open_state

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
HEAD = 'version: 1\nenvironmentID: "5"\ncoalesce: {url: "sim://"}\n'


def plan_of(paths=("specs",), state=None, **kw):
    request = PlanRequest(paths=paths, offline=True, now=NOW, **kw)
    return plan_specs(request, state=state, environ={}).plan


def record_apply(state_file: Path, runs) -> None:
    """Write an apply of ``runs`` (RunSpec objects) into the state, as apply would."""
    store = open_state(state_file)
    apply_id = store.begin_apply(
        who="t", host="h", git_commit=None, environments=["e"], argv=["apply"]
    )
    for counter, run in enumerate(runs, start=1):
        from runner.plan import request_hash

        request = run.request.redacted()
        run_id = store.record_intent(
            apply_id, run.environment, run.batch, run.name, request, request_hash(request)
        )
        store.record_fired(run_id, counter)
        store.record_status(run_id, "completed")
    store.finish_apply(apply_id, "succeeded")
    store.close()


def test_everything_is_new_against_an_empty_state(write) -> None:
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, jobID: 1}\n  - {name: b, jobID: 2}\n"})
    plan = plan_of()
    assert [(r.identity, r.action) for r in plan.runs()] == [
        ("e/a", Action.NEW),
        ("e/b", Action.NEW),
    ]
    assert plan.has_changes


def test_actions_against_the_last_applied_state(write, tmp_path: Path) -> None:
    from runner.spec import RenderOptions, load_specs

    write(
        {
            "specs/e.yaml": HEAD
            + "runs:\n  - {name: same, jobID: 1}\n  - {name: edit, jobID: 2, parallelism: 4,"
            + " parameters: {a: '1', b: '2'}}\n  - {name: gone, jobID: 3}\n"
            + "  - {name: ws, includeNodesSelector: '{ location: STG }'}\n"
        }
    )
    applied = load_specs(["specs"], options=RenderOptions(environ={}), environ={})
    record_apply(tmp_path / "state.db", list(applied.runs()))
    write(
        {
            "specs/e.yaml": HEAD
            + "runs:\n  - {name: same, jobID: 1}\n  - {name: edit, jobID: 2, parallelism: 8,"
            + " parameters: {a: '1', c: '3'}}\n  - {name: fresh, jobID: 4}\n"
            + "  - {name: ws, includeNodesSelector: '{location:STG}'}\n"
        }
    )
    reader = open_state_reader(tmp_path / "state.db")
    plan = plan_of(state=reader)
    actions = {r.identity: r.action for r in plan.runs()}
    assert actions == {
        "e/same": Action.UNCHANGED,
        "e/edit": Action.CHANGED,
        "e/fresh": Action.NEW,
        "e/ws": Action.UNCHANGED,  # a whitespace-only selector edit is not a change
    }
    [env] = plan.environments
    assert [r.identity for r in env.removed] == ["e/gone"]
    edit = next(r for r in plan.runs() if r.name == "edit")
    assert [(c.field, c.before, c.after) for c in edit.changes] == [
        ("runDetails.parallelism", 4, 8),
        ("parameters.b", "2", None),
        ("parameters.c", None, "3"),
    ]
    assert plan.state_serial == reader.serial(["e"]) > 0


def test_filters_pick_environments_and_runs(write) -> None:
    write(
        {
            "specs/e.yaml": HEAD + "runs:\n  - {name: load-a, jobID: 1}\n  - {name: x, jobID: 2}\n",
            "specs/f.yaml": HEAD + "runs:\n  - {name: load-b, jobID: 1}\n",
        }
    )
    plan = plan_of(filters=Filters(runs=["load-*"]))
    assert [r.identity for r in plan.runs()] == ["e/load-a", "f/load-b"]
    plan = plan_of(filters=Filters(environments=["f"]))
    assert [r.identity for r in plan.runs()] == ["f/load-b"]


def test_warnings_for_whole_environment_and_force(write) -> None:
    write(
        {
            "specs/e.yaml": HEAD
            + "runs:\n  - {name: all, allNodes: true}\n"
            + "  - {name: forced, jobID: 1, forceIgnoreEnvironmentStatus: true}\n"
        }
    )
    codes = [(w.run, w.code, w.fails) for w in plan_of().warnings() if w.run]
    assert codes == [("all", "whole-environment", False), ("forced", "force", False)]


def test_missing_secret_is_a_plan_warning(write) -> None:
    write({"specs/e.yaml": 'version: 1\nenvironmentID: "5"\nruns: [{name: a, jobID: 1}]\n'})
    [warning] = list(plan_of().warnings())
    assert warning.code == "missing-secret"
    assert "COALESCE_TOKEN is not set" in warning.message


def nodes() -> list[EnvironmentNode]:
    def node(i: str, name: str, loc: str, deps: list[tuple[str, str]] = []) -> EnvironmentNode:  # noqa: B006
        meta = {
            "sourceMapping": [
                {"dependencies": [{"locationName": loc, "nodeName": n} for loc, n in deps]}
            ]
        }
        return EnvironmentNode.model_validate(
            {"id": i, "name": name, "locationName": loc, "nodeType": "Stage", "metadata": meta}
        )

    return [
        node("1", "SRC_A", "SRC"),
        node("2", "STG_A", "STG", [("SRC", "SRC_A")]),
        node("3", "DIM_A", "DIM", [("STG", "STG_A")]),
    ]


def test_online_facts_resolve_selectors_and_flag_failures(write) -> None:
    from runner.plan import Baseline, PlanInputs, make_plan
    from runner.spec import RenderOptions, load_specs

    write(
        {
            "specs/e.yaml": HEAD
            + "runs:\n  - {name: down, includeNodesSelector: '{ location: STG }+'}\n"
            + "  - {name: none, includeNodesSelector: '{ location: NOPE }'}\n"
            + "  - {name: maybe, includeNodesSelector: '{ location: NOPE }', allowEmpty: true}\n"
        }
    )
    specs = load_specs(["specs"], options=RenderOptions(environ={}), environ={})
    facts = {"e": EnvironmentFacts("e", status="Failed Deploy", graph=build_graph(nodes()))}
    plan = make_plan(PlanInputs(specs=specs, baseline=Baseline("state", {}), facts=facts, now=NOW))
    down, none, maybe = plan.runs()
    assert down.selection is not None and down.selection.node_names == ("STG_A", "DIM_A")
    assert none.selection is not None and none.selection.count == 0
    assert [(w.code, w.fails) for w in none.warnings] == [
        ("failed-deploy", True),
        ("empty-selection", True),
    ]
    assert [(w.code, w.fails) for w in maybe.warnings] == [
        ("failed-deploy", True),
        ("empty-selection", False),
    ]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


KEYED = HEAD + (
    "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: svc\n"
    "  snowflakeKeyPairKey: \"{{ secret_file('../keys/k.p8') }}\"\n"
    "runs:\n  - {name: a, jobID: 1}\n"
)


@pytest.mark.parametrize("where", ["the repository", "the specs folder"])
def test_against_reads_no_secret_of_the_baseline_from_any_folder(
    write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    write({"specs/e.yaml": KEYED, "keys/k.p8": "-----BEGIN PRIVATE KEY-----\nAAAA\n"})
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "specs")
    git(tmp_path, "commit", "-qm", "first")
    (tmp_path / "keys" / "k.p8").unlink()  # the baseline never reads it
    write({"specs/e.yaml": KEYED.replace("jobID: 1", "jobID: 2")})
    if where == "the specs folder":
        monkeypatch.chdir(tmp_path / "specs")

    plan = plan_of(paths=(str(tmp_path / "specs"),), against="main")
    assert {r.identity: r.action for r in plan.runs()} == {"e/a": Action.CHANGED}
    [run] = plan.runs()
    assert [c.field for c in run.changes] == ["runDetails.jobID"]  # the key is no change


def test_against_a_git_revision(write, tmp_path: Path) -> None:
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, jobID: 1}\n  - {name: b, jobID: 2}\n"})
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, jobID: 9}\n  - {name: c, jobID: 3}\n"})
    git(tmp_path, "commit", "-qam", "second")
    write({"specs/e.yaml": HEAD + "runs:\n  - {name: a, jobID: 9}\n  - {name: c, jobID: 4}\n"})

    plan = plan_of(against="HEAD~1")
    assert plan.baseline == "git:HEAD~1"
    assert {r.identity: r.action for r in plan.runs()} == {
        "e/a": Action.CHANGED,
        "e/c": Action.NEW,
    }
    assert [r.identity for r in plan.environments[0].removed] == ["e/b"]
    head = plan_of(against="HEAD")
    assert {r.identity: r.action for r in head.runs()} == {
        "e/a": Action.UNCHANGED,
        "e/c": Action.CHANGED,
    }


def test_against_an_unknown_revision_is_a_clear_error(write, tmp_path: Path) -> None:
    write({"specs/e.yaml": HEAD + "runs: [{name: a, jobID: 1}]\n"})
    git(tmp_path, "init", "-q")
    with pytest.raises(RunnerError) as caught:
        plan_of(against="no-such-branch")
    assert "--against takes a branch, tag or commit" in str(caught.value)


def test_plan_file_round_trip_and_staleness(write, tmp_path: Path) -> None:
    write({"specs/e.yaml": HEAD + "runs: [{name: a, jobID: 1, parameters: {x: y}}]\n"})
    plan = plan_of()
    write_plan_file(plan, tmp_path / "plan.json")
    loaded = read_plan_file(tmp_path / "plan.json")
    assert [(r.identity, r.request, r.action) for r in loaded.runs()] == [
        (r.identity, r.request, r.action) for r in plan.runs()
    ]
    assert loaded.fingerprint() == plan.fingerprint()
    assert loaded.state_serials == {"e": 0}
    check_fresh(loaded, {"e": 0, "other": 4}, "plan.json")  # fresh: nothing raised
    with pytest.raises(
        StalePlanError, match=r"the state of 'e' \(serial 0 -> 3\) changed since the plan was made"
    ):
        check_fresh(loaded, {"e": 3}, "plan.json")
    write({"specs/e.yaml": HEAD + "runs: [{name: a, jobID: 2}]\n"})
    with pytest.raises(StalePlanError, match=r"specs/e\.yaml changed since the plan was made"):
        check_fresh(loaded, {"e": 0}, "plan.json")


def test_a_plan_file_of_the_one_serial_runner_is_stale(write, tmp_path: Path) -> None:
    """A plan saved by a runner that kept one serial for the whole state has no serial
    per environment to compare with: it is refused, not applied on a guess."""
    write({"specs/e.yaml": HEAD + "runs: [{name: a, jobID: 1}]\n"})
    document = plan_to_document(plan_of())
    del document["stateSerials"]
    (tmp_path / "plan.json").write_text(json.dumps(document))

    loaded = read_plan_file(tmp_path / "plan.json")

    with pytest.raises(StalePlanError, match="made by an older runner, which kept one serial"):
        check_fresh(loaded, {"e": 0}, "plan.json")


def test_an_apply_committed_while_the_plan_reads_its_baseline_leaves_the_plan_stale(
    write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's serials are read before its baseline: an apply that commits in between
    makes the plan stale, instead of current with the baseline from before it (applying
    that plan would fire as new a run the other apply had just fired)."""
    from runner.plan import service
    from runner.spec import RenderOptions, load_specs

    write({"specs/e.yaml": HEAD + "runs: [{name: a, jobID: 1}]\n"})
    open_state(tmp_path / "state.db").close()
    reader = open_state_reader(tmp_path / "state.db")
    applied = list(load_specs(["specs"], options=RenderOptions(environ={}), environ={}).runs())
    read_baseline = service._baseline

    def baseline_then_an_apply_commits(*args, **kwargs):
        baseline = read_baseline(*args, **kwargs)
        record_apply(tmp_path / "state.db", applied)
        return baseline

    monkeypatch.setattr(service, "_baseline", baseline_then_an_apply_commits)
    plan = plan_of(state=reader)

    assert [run.action for run in plan.runs()] == [Action.NEW]
    with open_state(tmp_path / "state.db") as store, pytest.raises(StalePlanError):
        check_fresh(plan, store.serials(["e"]), "plan.json")


def test_plan_file_is_refused_when_not_a_plan(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(RunnerError, match="is not a runner plan"):
        read_plan_file(tmp_path / "x.json")


DATED = HEAD + (
    "defaults:\n"
    "  parameters: {load_date: \"{{ now().strftime('%Y-%m-%d') }}\", region: emea}\n"
    "{ignore}"
    "runs:\n  - {name: a, jobID: 1}\n"
)


@pytest.mark.parametrize("ignore", [True, False], ids=["ignoreChanges", "without"])
def test_a_date_from_now_planned_the_next_day_is_no_change_when_ignored(
    write, tmp_path: Path, ignore: bool
) -> None:
    keys = "  ignoreChanges: [parameters.load_date]\n" if ignore else ""
    write({"specs/e.yaml": DATED.replace("{ignore}", keys)})
    yesterday = plan_specs(
        PlanRequest(paths=("specs",), offline=True, now=NOW - dt.timedelta(days=1)),
        state=None,
        environ={},
    )
    record_apply(tmp_path / "state.db", list(yesterday.specs.runs()))

    plan = plan_of(state=open_state(tmp_path / "state.db", readonly=True))
    [run] = plan.runs()
    change = ("parameters.load_date", "2026-11-27", "2026-11-28")
    if ignore:
        assert run.action is Action.UNCHANGED and not plan.has_changes
        assert [(c.field, c.before, c.after) for c in run.ignored] == [change]
    else:
        assert run.action is Action.CHANGED
        assert [(c.field, c.before, c.after) for c in run.changes] == [change]


def test_ignore_changes_names_only_run_keys(run_cli, write) -> None:
    write({"specs/e.yaml": DATED.replace("{ignore}", "  ignoreChanges: [parameter.load_date]\n")})
    result = run_cli("validate", "specs")
    assert result.code == 1
    assert "defaults.ignoreChanges[0]: names no run key whose change can be ignored" in result.err
    assert "use parameters.NAME" in result.err
