"""The GitHub Action (action.yml) and the example workflows (docs/github-actions/).

- actionlint checks every example workflow, and the action's inputs and outputs as the
  workflows use them (each workflow is also checked with the action as a local ``./``
  action, so that a misspelt input or output is an error);
- shellcheck checks the action's ``run:`` blocks (actionlint checks the workflows' own);
- the action's steps run as a runner would run them: each ``run:`` block with
  ``bash --noprofile --norc -eo pipefail``, its ``env:`` expanded from the inputs, and
  ``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_ACTION_PATH`` set to temporary files
  and this checkout, against the embedded simulator.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
WORKFLOWS = sorted((REPO / "docs" / "github-actions").glob("*.yml"))
BIN = Path(sys.executable).parent
# The step that installs runner with pip is not run: runner is installed here already
# (from this checkout); running it would replace the installation the suite runs.
INSTALL_STEP = "Install runner"

SPEC = (
    'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
    "userCredentials:\n  snowflakeUsername: svc\n"
    "  snowflakePassword: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"\n"
    "runs:\n  - name: stage\n    includeNodesSelector: '{ location: STG }'\n"
)
CANARY = "CANARY-action-pw-5e2a"


def _tool(name: str) -> str | None:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


def _env_with_tools() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_every_example_workflow_is_linted() -> None:
    assert [w.name for w in WORKFLOWS] == [
        "runner-apply.yml",
        "runner-check.yml",
        "runner-plan.yml",
    ]


def test_actionlint_passes_on_the_workflows_and_the_action_as_they_use_it(
    tmp_path: Path,
) -> None:
    actionlint = _tool("actionlint")
    assert actionlint, "actionlint is in the test extra: pip install -e '.[test]'"
    as_written = subprocess.run(
        [actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True, env=_env_with_tools()
    )
    assert as_written.returncode == 0, as_written.stdout + as_written.stderr

    # The same workflows in a repository whose root is this action: actionlint then
    # reads action.yml and checks every input and output the workflows name.
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ACTION, tmp_path / "action.yml")
    for workflow in WORKFLOWS:
        text = workflow.read_text()
        assert "your-org/runner@v1" in text
        as_local = text.replace("your-org/runner@v1", "./")
        (tmp_path / ".github" / "workflows" / workflow.name).write_text(as_local)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    local = subprocess.run(
        [actionlint], cwd=tmp_path, capture_output=True, text=True, env=_env_with_tools()
    )
    assert local.returncode == 0, local.stdout + local.stderr

    # And actionlint does read it: an input the action lacks is an error.
    plan = tmp_path / ".github" / "workflows" / "runner-plan.yml"
    plan.write_text(
        plan.read_text().replace("command: validate", "command: validate\n          cmd: x")
    )
    wrong = subprocess.run(
        [actionlint], cwd=tmp_path, capture_output=True, text=True, env=_env_with_tools()
    )
    assert wrong.returncode == 1 and 'input "cmd" is not defined' in wrong.stdout


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def test_shellcheck_passes_on_the_run_blocks_of_the_action(tmp_path: Path) -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    steps = [s for s in _action()["runs"]["steps"] if "run" in s]
    assert len(steps) == 3
    for number, step in enumerate(steps):
        assert step["shell"] == "bash"
        script = tmp_path / f"step-{number}.sh"
        script.write_text("#!/usr/bin/env bash\n" + step["run"])
        done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{step['name']}:\n{done.stdout}"


def test_the_action_installs_the_driver_a_shared_state_url_needs() -> None:
    """The ``state`` input is usually a postgresql:// URL: without the extra, every apply
    from the action would stop at "install runner[postgres]"."""
    [install] = [s for s in _action()["runs"]["steps"] if s["name"] == INSTALL_STEP]
    assert '"${ACTION_PATH}[postgres]"' in install["run"]


def test_the_action_pastes_no_expression_into_a_script() -> None:
    """Inputs reach the scripts as environment variables only (no script injection)."""
    for step in _action()["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]


@dataclass
class StepsResult:
    code: int
    log: str
    outputs: dict[str, str]
    job_summary: str


def run_action(
    workdir: Path, tmp: Path, *, environ: dict[str, str] | None = None, **inputs: str
) -> StepsResult:
    """The action's steps, as a runner runs a composite action's ``run:`` steps."""
    action = _action()
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    unknown = set(inputs) - set(values)
    assert not unknown, f"not inputs of the action: {unknown}"
    values.update(inputs)
    output = tmp / "github-output"
    summary = tmp / "job-summary.md"
    summary.write_text("# The job so far\n")
    output.write_text("")
    base = {
        **_env_with_tools(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTION": "runner",
        "GITHUB_ACTION_PATH": str(REPO),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(workdir),
        "RUNNER_TEMP": str(tmp / "runner-temp"),
        **(environ or {}),
    }
    (tmp / "runner-temp").mkdir(exist_ok=True)
    log = []
    code = 0
    for step in action["runs"]["steps"]:
        if "run" not in step or step["name"] == INSTALL_STEP:
            continue  # setup-python: this Python is the runner's
        step_env = {k: _expand(str(v), values) for k, v in step.get("env", {}).items()}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workdir,
            env={**base, **step_env},
            capture_output=True,
            text=True,
        )
        log.append(done.stdout + done.stderr)
        code = done.returncode
        if code != 0:
            break
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return StepsResult(code, "".join(log), outputs, summary.read_text())


def _expand(value: str, inputs: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression == "github.action_path":
            return str(REPO)
        name = expression.removeprefix("inputs.")
        assert name != expression, f"an expression the test does not know: {expression}"
        return inputs[name]

    return re.sub(r"\$\{\{(.*?)\}\}", one, value)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "e.yaml").write_text(SPEC)
    monkeypatch.setenv("COALESCE_TOKEN", "sim-demo-token")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", CANARY)
    return root


def test_plan_with_changes_passes_the_step_and_writes_every_output(
    project: Path, tmp_path: Path
) -> None:
    result = run_action(
        project, tmp_path, command="plan", env="e", args="--detailed-exitcode --offline"
    )
    assert result.code == 0, result.log  # changes are not a failure
    assert result.outputs["exit-code"] == "2"
    assert result.outputs["has-changes"] == "true"
    assert result.outputs["marker"] == "runner:plan path=specs env=e"
    comment = Path(result.outputs["comment"]).read_text()
    assert comment.startswith("<!-- runner:plan path=specs env=e -->\n\n### Plan: 1 new")
    assert Path(result.outputs["plan-json"]).is_file()
    assert "+ stage" in result.log  # the plan, as text, in the log
    own = Path(result.outputs["summary"]).read_text()
    assert "### Plan: 1 new" in own
    assert result.job_summary == "# The job so far\n" + own  # appended, not replaced
    assert CANARY not in result.log + comment + result.job_summary


def test_plan_without_changes_says_so(project: Path, tmp_path: Path) -> None:
    first = run_action(project, tmp_path, command="apply", args="--poll-interval 0.05")
    assert first.code == 0, first.log
    again = run_action(project, tmp_path, command="plan", args="--detailed-exitcode")
    assert again.code == 0, again.log
    assert (again.outputs["exit-code"], again.outputs["has-changes"]) == ("0", "false")


def test_a_bad_spec_fails_validate_and_plan_with_annotations(project: Path, tmp_path: Path) -> None:
    (project / "specs" / "e.yaml").write_text(SPEC.replace("includeNodesSelector", "includeNodes"))
    for command in ("validate", "plan"):
        result = run_action(project, tmp_path, command=command)
        assert result.code == 1, result.log
        assert result.outputs["exit-code"] == "1"
        assert re.search(r"^::error file=specs/e.yaml,line=9,col=5,", result.log, re.M)


def test_apply_fires_appends_its_report_and_fails_the_step_when_a_run_fails(
    project: Path, tmp_path: Path
) -> None:
    ok = run_action(project, tmp_path, command="apply", args="--poll-interval 0.05")
    assert ok.code == 0, ok.log
    assert ok.outputs["exit-code"] == "0"
    assert "| e | default | stage | completed |" in ok.job_summary
    assert Path(ok.outputs["summary"]).read_text() in ok.job_summary

    shutil.copy(REPO / "specs" / "demo.yaml", project / "specs" / "demo.yaml")
    failed = run_action(project, tmp_path, command="apply", env="demo", args="--poll-interval 0.05")
    assert failed.code == 3, failed.log  # a run failed: the step fails with apply's code
    assert failed.outputs["exit-code"] == "3"
    assert "| demo | core | facts | failed |" in failed.job_summary
    assert CANARY not in ok.log + failed.log + ok.job_summary + failed.job_summary


def test_an_unknown_command_fails_the_step(project: Path, tmp_path: Path) -> None:
    result = run_action(project, tmp_path, command="destroy")
    assert result.code == 1
    assert (
        "::error title=runner action::input 'command' must be validate, plan or apply" in result.log
    )
    assert "destroy" not in result.log


def test_the_readme_shows_the_two_workflows_as_they_are() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("runner-plan.yml", "runner-apply.yml"):
        text = (REPO / "docs" / "github-actions" / name).read_text()
        assert f"```yaml\n{text}```" in readme, f"README's copy of {name} differs"
