"""Inside GitHub's own surfaces: annotations on the diff, the step summary of a plan, and
the error of `plan --against` in a shallow clone."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from runner.errors import Problem
from runner.render.github import annotation, problem_annotations

HEAD = 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
GOOD = HEAD + "runs:\n  - name: stage\n    includeNodesSelector: '{ location: STG }'\n"
# Line 6, column 5: an unknown key (with a did-you-mean).
BAD = HEAD + "runs:\n  - name: stage\n    paralelism: 4\n"
# Line 6, column 22: a parameter that reads a secret.
LEAKY = (
    HEAD + "runs:\n  - name: stage\n    parameters: {pw: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"}\n"
)
CANARY = "CANARY-annotation-9d1f,:%\n::error::injected"
ANNOTATION = re.compile(
    r"^::(error|warning) file=([^,]+),line=(\d+)(?:,col=(\d+))?(?:,title=[^:]*)?::(.*)$"
)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A GitHub Actions job: its variables, and the step summary file."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def _annotations(text: str) -> list[tuple[str, str, int, int, str]]:
    found = []
    for line in text.splitlines():
        match = ANNOTATION.match(line)
        if match:
            kind, file, row, col, message = match.groups()
            found.append((kind, file, int(row), int(col or 0), message))
    return found


def test_a_message_cannot_end_the_command_or_start_another() -> None:
    line = annotation(
        "error", "50% done\r\n::error::fake", file="specs/a,b:c.yaml", line=3, col=7, title="t:x"
    )
    assert line == (
        "::error file=specs/a%2Cb%3Ac.yaml,line=3,col=7,title=t%3Ax::50%25 done%0D%0A::error::fake"
    )
    assert "\n" not in line
    assert annotation("warning", "plain") == "::warning::plain"


def test_a_path_is_given_relative_to_the_workspace(tmp_path: Path) -> None:
    problem = Problem(str(tmp_path / "specs" / "e.yaml"), 4, 2, "bad")
    [line] = problem_annotations([problem], {"GITHUB_WORKSPACE": str(tmp_path)})
    assert line == "::error file=specs/e.yaml,line=4,col=2,title=runner::bad"


def test_validate_annotates_a_bad_spec_at_its_line_and_column(
    run_cli, write, github, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", CANARY)
    write({"specs/good.yaml": GOOD, "specs/bad.yaml": BAD, "specs/leaky.yaml": LEAKY})
    result = run_cli("validate")
    assert result.code == 1
    found = _annotations(result.err)
    [unknown] = [a for a in found if "paralelism" in a[4]]
    assert unknown[:4] == ("error", "specs/bad.yaml", 6, 5)
    assert "did you mean 'parallelism'" in unknown[4]
    [leaky] = [a for a in found if a[1] == "specs/leaky.yaml" and a[0] == "error"]
    assert leaky[2:4] == (6, 22) and "a secret cannot be used in" in leaky[4]
    assert "specs/bad.yaml:6:5: " in result.err  # the usual lines too
    assert "CANARY" not in result.text and "injected" not in result.text


def test_no_annotation_outside_github_actions(run_cli, write) -> None:
    write({"specs/bad.yaml": BAD})
    result = run_cli("validate")
    assert result.code == 1 and "::error" not in result.text


def test_plan_annotates_load_errors_and_warnings(run_cli, write, github) -> None:
    write({"specs/bad.yaml": BAD})
    failed = run_cli("plan", "--offline")
    assert failed.code == 1
    assert ("error", "specs/bad.yaml", 6, 5) in [a[:4] for a in _annotations(failed.err)]

    write({"specs/bad.yaml": GOOD})
    plan = run_cli("plan", "--format", "json")  # no token: a warning, and not read online
    assert plan.code == 0
    json.loads(plan.out)  # stdout stays the document: annotations go to stderr
    found = _annotations(plan.err)
    kinds = {(kind, file, row) for kind, file, row, _, _ in found}
    assert ("warning", "specs/bad.yaml", 3) in kinds  # COALESCE_TOKEN is not set
    assert "::" not in plan.out


def test_a_refused_run_is_an_error_annotation_where_the_run_is_written(
    run_cli, write, github, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", "sim-demo-token")
    write(
        {
            "specs/e.yaml": GOOD
            + "  - name: empty\n    includeNodesSelector: '{ location: NOWHERE }'\n"
        }
    )
    result = run_cli("plan")
    assert result.code == 1
    errors = [a for a in _annotations(result.err) if a[0] == "error"]
    assert [(file, row) for _, file, row, _, _ in errors] == [
        ("specs/e.yaml", 7)
    ]  # "- name: empty"
    assert "matches no node" in errors[0][4]


def test_plan_appends_its_markdown_to_the_step_summary(run_cli, write, github: Path) -> None:
    write({"specs/e.yaml": GOOD})
    github.write_text("earlier step\n")
    result = run_cli("plan", "--offline", "--env", "e")
    assert result.code == 0
    summary = github.read_text()
    assert summary.startswith("earlier step\n<!-- runner:plan path=specs env=e -->\n")
    assert "| e | 1 | 1 | 0 | 0 | 0 |" in summary
    run_cli("plan", "--offline")
    assert github.read_text().count("### Plan:") == 2  # appended, never overwritten


def test_an_unwritable_step_summary_is_said_and_the_plan_goes_on(
    run_cli, write, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write({"specs/e.yaml": GOOD})
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "dir" / "s.md"))
    result = run_cli("plan", "--offline", "--detailed-exitcode")
    assert result.code == 2
    assert "could not write the job summary (GITHUB_STEP_SUMMARY)" in result.err


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "protocol.file.allow=always",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def test_against_in_a_shallow_clone_says_how_to_fetch_the_base(
    run_cli, tmp_path: Path, monkeypatch
) -> None:
    origin = tmp_path / "origin"
    (origin / "specs").mkdir(parents=True)
    (origin / "specs" / "e.yaml").write_text(GOOD)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "base")
    git(origin, "checkout", "-qb", "feature")
    (origin / "specs" / "e.yaml").write_text(GOOD.replace("STG", "DIM"))
    git(origin, "commit", "-qam", "change")
    # As actions/checkout does for a pull request: one commit of one branch.
    git(
        tmp_path,
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        "feature",
        "--single-branch",
        f"file://{origin}",
        "clone",
    )
    clone = tmp_path / "clone"
    monkeypatch.chdir(clone)

    result = run_cli("plan", "--offline", "--against", "origin/main")
    assert result.code == 1
    assert (
        "--against origin/main: this clone is shallow and does not have origin/main" in result.err
    )
    assert "'fetch-depth: 0'" in result.err
    fetch = "git fetch --no-tags --depth=1 origin main:refs/remotes/origin/main"
    assert fetch in result.err

    git(clone, *fetch.split()[1:])  # what the message says to do
    fixed = run_cli("plan", "--offline", "--against", "origin/main", "--format", "json")
    assert fixed.code == 0, fixed.err
    [run] = json.loads(fixed.out)["runs"]
    assert run["action"] == "changed"
