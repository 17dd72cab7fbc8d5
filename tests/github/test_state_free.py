"""The state-free recipe: a pull request's job saves ``plan --against BASE --out
plan.json``; after the merge, a fresh machine with no state runs ``apply plan.json
--changed-only``, which fires only what the reviewed plan showed as new or changed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HEAD = 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
BASE = HEAD + (
    "runs:\n"
    "  - {name: stage, includeNodesSelector: '{ location: STG }'}\n"
    "  - {name: dims, includeNodesSelector: '{ location: DIM }'}\n"
)
CHANGED = HEAD + (
    "runs:\n"
    "  - {name: stage, includeNodesSelector: '{ location: STG }', parallelism: 2}\n"
    "  - {name: dims, includeNodesSelector: '{ location: DIM }'}\n"
    "  - {name: facts, includeNodesSelector: '{ location: FACT }'}\n"
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_a_plan_made_on_the_pull_request_fires_only_new_and_changed_runs_after_merge(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", "sim-demo-token")
    pull_request = tmp_path / "pull-request"
    (pull_request / "specs").mkdir(parents=True)
    (pull_request / "specs" / "e.yaml").write_text(BASE)
    git(pull_request, "init", "-q", "-b", "main")
    git(pull_request, "add", ".")
    git(pull_request, "commit", "-qm", "base")
    git(pull_request, "checkout", "-qb", "change")
    (pull_request / "specs" / "e.yaml").write_text(CHANGED)
    git(pull_request, "commit", "-qam", "change")

    # The pull request's job: no state, the plan against the base branch, saved.
    monkeypatch.chdir(pull_request)
    planned = run_cli("plan", "--against", "main", "--out", "plan.json", "--format", "json")
    assert planned.code == 0, planned.err
    actions = {run["name"]: run["action"] for run in json.loads(planned.out)["runs"]}
    assert actions == {"stage": "changed", "dims": "unchanged", "facts": "new"}
    assert not (pull_request / ".runner").exists()  # plan wrote no state

    # After the merge, on a fresh machine: the merged specs, the plan file from the
    # pull request's artifact, and an empty state.
    merged = tmp_path / "merge-job"
    git(tmp_path, "clone", "-q", "--branch", "change", str(pull_request), str(merged))
    shutil.copy(pull_request / "plan.json", merged / "plan.json")
    monkeypatch.chdir(merged)
    applied = run_cli(
        "apply",
        "plan.json",
        "--changed-only",
        "--auto-approve",
        "--poll-interval",
        "0.05",
        "--format",
        "json",
    )
    assert applied.code == 0, applied.err
    fired = {run["name"]: run["status"] for run in json.loads(applied.out)["runs"]}
    assert fired == {"stage": "completed", "facts": "completed"}  # dims did not fire


def test_the_plan_is_refused_if_the_merged_specs_differ_from_the_reviewed_ones(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A limit of the recipe: a change merged after the plan was made (another pull
    request, a fix-up commit) makes the plan stale, and nothing fires."""
    monkeypatch.setenv("COALESCE_TOKEN", "sim-demo-token")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "e.yaml").write_text(BASE)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "specs" / "e.yaml").write_text(CHANGED)
    assert run_cli("plan", "--against", "main", "--out", "plan.json").code == 0
    (tmp_path / "specs" / "e.yaml").write_text(CHANGED.replace("parallelism: 2", "parallelism: 3"))
    result = run_cli("apply", "plan.json", "--changed-only", "--auto-approve")
    assert result.code == 1
    assert "the plan plan.json is stale: specs/e.yaml changed since the plan was made" in result.err
