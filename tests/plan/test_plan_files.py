"""Plan files and the state on disk: private, never written through a link, and a plan
file cannot be edited into firing batches in another order or past a failure."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.apply.jobs import jobs_from_plan
from runner.errors import StalePlanError
from runner.plan import PlanRequest, plan_specs, read_plan_file, write_plan_file
from runner.spec import RenderOptions, load_specs
from runner.state import open_state

SPEC = """version: 1
environmentID: "5"
coalesce: {url: "sim://"}
batches:
  - name: first
    maxConcurrent: 2
    runs:
      - {name: a, jobID: "1"}
      - {name: b, jobID: "2"}
  - name: second
    onFailure: stop
    runs:
      - {name: c, jobID: "3"}
  - name: third
    runs:
      - {name: d, jobID: "4"}
"""


def _plan_file(write: Callable[[dict[str, str]], Path], tmp_path: Path) -> Path:
    write({"specs/e.yaml": SPEC})
    planned = plan_specs(PlanRequest(paths=("specs",), offline=True), state=None, environ={})
    path = tmp_path / "plan.json"
    write_plan_file(planned.plan, path)
    return path


def _jobs_of(path: Path) -> Any:
    environ = {"COALESCE_TOKEN": "t0ken-for-plan-files"}
    specs = load_specs(["specs"], options=RenderOptions(environ=environ), environ=environ)
    return jobs_from_plan(read_plan_file(path), specs)


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text())
    change(document["environments"][0])
    path.write_text(json.dumps(document))


def _swap_batches(env: dict[str, Any]) -> None:
    env["batches"][1], env["batches"][2] = env["batches"][2], env["batches"][1]


def _continue_after_failure(env: dict[str, Any]) -> None:
    env["batches"][1]["onFailure"] = "continue"


def _no_limit(env: dict[str, Any]) -> None:
    env["batches"][0]["maxConcurrent"] = None


def _move_a_run(env: dict[str, Any]) -> None:
    env["batches"][0]["runs"].remove("b")
    env["batches"][2]["runs"].append("b")


def _drop_a_batch_boundary(env: dict[str, Any]) -> None:
    env["batches"][1]["runs"] += env["batches"][2]["runs"]
    del env["batches"][2]


def test_an_unedited_plan_file_gives_the_spec_batches(write, tmp_path: Path) -> None:
    (job,) = _jobs_of(_plan_file(write, tmp_path))
    shape = [
        (b.name, b.max_concurrent, b.on_failure, [r.name for r in b.runs]) for b in job.batches
    ]
    assert shape == [
        ("first", 2, "stop", ["a", "b"]),
        ("second", None, "stop", ["c"]),
        ("third", None, "stop", ["d"]),
    ]


@pytest.mark.parametrize(
    "edit",
    [_swap_batches, _continue_after_failure, _no_limit, _move_a_run, _drop_a_batch_boundary],
)
def test_a_plan_file_edited_in_its_batches_is_refused(
    write, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    path = _plan_file(write, tmp_path)
    _edit(path, edit)
    with pytest.raises(StalePlanError, match="does not match the spec of 'e'"):
        _jobs_of(path)


def test_a_plan_file_is_never_written_through_a_link(write, tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    write({"specs/e.yaml": SPEC})
    plan = plan_specs(PlanRequest(paths=("specs",), offline=True), state=None, environ={}).plan
    out = tmp_path / "plan.json"
    (tmp_path / ".plan.json.partial").symlink_to(target)  # planted by someone else
    out.symlink_to(target)

    write_plan_file(plan, out)

    assert target.read_text() == "keep me"
    assert not out.is_symlink() and json.loads(out.read_text())["kind"] == "runner-plan"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert leftovers == [".plan.json.partial"]  # the planted one, untouched


def test_a_new_state_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / ".runner" / "state.db"
        with open_state(path) as store:
            store.begin_apply(who="t", host="h", git_commit=None, environments=["e"], argv=[])
            files = [path, path.with_name("state.db-wal"), path.with_name("state.db-shm")]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files if p.exists()}
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes


def test_an_existing_state_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_state(path):
        pass
    path.chmod(0o644)
    with open_state(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
