"""``extends`` stays in the spec's folder (or its git repository), is never read whole
when huge, and long chains are a clear error, not an internal one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec import RenderOptions, load_specs
from runner.spec.yaml_source import MAX_FILE_BYTES

HEAD = 'version: 1\nenvironmentID: "5"\ncoalesce: {url: "sim://"}\nruns: [{name: a, jobID: "1"}]\n'


def _load(*paths: Path) -> None:
    environ = {"COALESCE_TOKEN": "t0ken-extends"}
    load_specs([str(p) for p in paths], options=RenderOptions(environ=environ), environ=environ)


def _problem(spec: Path) -> str:
    with pytest.raises(SpecError) as raised:
        _load(spec)
    return str(raised.value)


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_extends_cannot_leave_the_spec_folder(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "elsewhere" / "_secret.yaml"
    outside.parent.mkdir()
    outside.write_text("defaults: {parallelism: 2}\n")
    specs = tmp_path / "project" / "specs"
    specs.mkdir(parents=True)
    target = {"absolute": str(outside), "dotdot": "../../elsewhere/_secret.yaml"}.get(how)
    if how == "symlink":
        (specs / "_link.yaml").symlink_to(outside)
        target = "_link.yaml"
    spec = specs / "e.yaml"
    spec.write_text(f"extends: {target}\n" + HEAD)

    message = _problem(spec)

    assert "e.yaml:1:10" in message and "is outside" in message


def test_in_a_git_work_tree_extends_may_reach_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "shared").mkdir()
    (repo / "shared" / "_base.yaml").write_text("defaults: {parallelism: 2}\n")
    (repo / "specs").mkdir()
    spec = repo / "specs" / "e.yaml"
    spec.write_text("extends: ../shared/_base.yaml\n" + HEAD)
    _load(spec)  # no problem


def test_a_huge_base_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    base = tmp_path / "_big.yaml"
    with base.open("wb") as handle:  # sparse: 2 GB on paper, nothing on disk
        handle.truncate(2 * 1024**3)
    spec = tmp_path / "e.yaml"
    spec.write_text("extends: _big.yaml\n" + HEAD)
    assert os.path.getsize(base) > MAX_FILE_BYTES

    message = _problem(spec)

    assert "_big.yaml" in message and "larger than 1 MiB" in message


def test_a_chain_of_a_thousand_bases_is_a_clear_error(tmp_path: Path) -> None:
    for index in range(1000):
        nxt = f"extends: _b{index + 1}.yaml\n" if index < 999 else ""
        (tmp_path / f"_b{index}.yaml").write_text(nxt + "defaults: {parallelism: 2}\n")
    spec = tmp_path / "e.yaml"
    spec.write_text("extends: _b0.yaml\n" + HEAD)

    message = _problem(spec)

    assert "more than 32 bases in a chain" in message
