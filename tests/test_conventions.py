"""The small conventions of a command-line tool: --version, shell completion, --quiet,
--var-file, and `runner show` for a saved plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

SPEC = (
    'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
    "runs:\n"
    "  - name: stage\n    includeNodesSelector: \"{{ var('selector') }}\"\n"
    "    parameters: {region: \"{{ var('region') }}\", size: \"{{ var('size') }}\"}\n"
)
VARS = "selector: '{ location: STG }'\nregion: emea\nsize: 1.10\n"


def _runner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_version_prints_the_package_version(run_cli) -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.out == f"runner, version {version('runner')}\n"


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "complete -o nosort -F _runner_completion runner"),
        ("zsh", "compdef _runner_completion runner"),
        ("fish", "complete --no-files --command runner"),
    ],
)
def test_completion_scripts_are_generated_for_three_shells(shell: str, expected: str) -> None:
    done = _runner(env={"_RUNNER_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


def test_completion_completes_commands_and_options() -> None:
    words = {"_RUNNER_COMPLETE": "bash_complete", "COMP_CWORD": "1", "COMP_WORDS": "runner pl"}
    done = _runner(env=words)
    assert done.stdout.split() == ["plain,plan"]
    words = {"_RUNNER_COMPLETE": "bash_complete", "COMP_CWORD": "2", "COMP_WORDS": "runner show --"}
    assert "plain,--format" in _runner(env=words).stdout.split()


def test_quiet_leaves_out_notes_not_the_output_or_errors(run_cli, write) -> None:
    write({"specs/e.yaml": SPEC, "vars.yaml": VARS})
    loud = run_cli("plan", "--offline", "--var-file", "vars.yaml", "--out", "plan.json")
    quiet = run_cli("-q", "plan", "--offline", "--var-file", "vars.yaml", "--out", "plan.json")
    assert "Plan written to plan.json" in loud.err
    assert "Plan written to" not in quiet.err
    assert "+ stage" in quiet.out  # the plan asked for is printed all the same
    assert quiet.out.splitlines()[1:] == loud.out.splitlines()[1:]  # (line 1: the time)
    assert run_cli("validate", "--var-file", "vars.yaml").out.startswith("1 file valid")
    assert run_cli("--quiet", "validate", "--var-file", "vars.yaml").out == ""
    broken = run_cli("--quiet", "validate")  # no variables: an error, shown
    assert broken.code == 1 and "variable 'selector' is not set" in broken.err


def test_var_file_gives_variables_as_written_and_var_wins(run_cli, write) -> None:
    write({"specs/e.yaml": SPEC, "vars.yaml": VARS, "more.yaml": "region: apac\n"})
    result = run_cli(
        "plan",
        "--offline",
        "--format",
        "json",
        "--var-file",
        "vars.yaml",
        "--var-file",
        "more.yaml",  # a later file wins over an earlier one
        "--var",
        "size=2",  # the command line wins over the files
    )
    assert result.code == 0, result.err
    [run] = json.loads(result.out)["runs"]
    assert run["request"]["parameters"] == {"region": "apac", "size": "2"}
    assert run["request"]["runDetails"]["includeNodesSelector"] == "{ location: STG }"
    kept = json.loads(
        run_cli("plan", "--offline", "--format", "json", "--var-file", "vars.yaml").out
    )
    assert kept["runs"][0]["request"]["parameters"]["size"] == "1.10"  # not 1.1


def test_a_bad_var_file_is_reported_at_its_lines(run_cli, write) -> None:
    write(
        {
            "specs/e.yaml": SPEC,
            "bad.yaml": "region: [emea, apac]\nsize:\nselector: {a: 1}\n",
            "broken.yaml": "region: 'emea\n",
        }
    )
    result = run_cli("validate", "--var-file", "bad.yaml")
    assert result.code == 1
    assert result.err.splitlines() == [
        "bad.yaml:1:9: variable 'region' is a list; a variable is one value "
        "(a string, number or boolean)",
        "bad.yaml:2:1: variable 'size' has no value; give one (\"\" for an empty string) "
        "or remove the line",
        "bad.yaml:3:11: variable 'selector' is a map; a variable is one value "
        "(a string, number or boolean)",
    ]
    broken = run_cli("plan", "--offline", "--var-file", "broken.yaml")
    assert broken.code == 1 and broken.err.startswith("broken.yaml:2:1: not valid YAML")
    missing = run_cli("plan", "--offline", "--var-file", "nowhere.yaml")
    assert missing.code == 1
    assert "nowhere.yaml: cannot read file: No such file or directory" in missing.err
    listed = run_cli("plan", "--offline", "--var-file", "bad.yaml").err
    assert "Traceback" not in listed and "bad.yaml:1:9" in listed


def test_a_var_file_is_refused_with_a_plan_file(run_cli, write) -> None:
    write({"specs/e.yaml": SPEC, "vars.yaml": VARS})
    assert run_cli("plan", "--offline", "--var-file", "vars.yaml", "--out", "p.json").code == 0
    result = run_cli("apply", "p.json", "--var-file", "vars.yaml", "--auto-approve")
    assert result.code == 1
    assert "a plan file is applied as planned" in result.err


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_prints_a_saved_plan_as_plan_printed_it(run_cli, write, fmt: str) -> None:
    write({"specs/e.yaml": SPEC, "vars.yaml": VARS})
    planned = run_cli(
        "plan", "--offline", "--var-file", "vars.yaml", "--format", fmt, "--out", "plan.json"
    )
    Path("specs/e.yaml").unlink()  # show reads the plan file alone
    shown = run_cli("show", "plan.json", "--format", fmt)
    assert shown.code == 0, shown.err
    if fmt == "markdown":  # the marker names the plan's environments, not the paths
        assert shown.out.splitlines()[0] == "<!-- runner:plan env=e -->"
        assert planned.out.splitlines()[0] == "<!-- runner:plan path=specs -->"
        assert shown.out.splitlines()[1:] == planned.out.splitlines()[1:]
    else:
        assert shown.out == planned.out


def test_show_refuses_what_is_not_a_plan_file(run_cli, write) -> None:
    write({"specs/e.yaml": SPEC, "other.json": '{"kind": "runner-apply"}'})
    result = run_cli("show", "other.json")
    assert result.code == 1
    assert "other.json is not a runner plan" in result.err
    assert "make one with: runner plan --out PLAN.json" in result.err
    assert run_cli("show", "specs/e.yaml").code == 1


def test_quiet_apply_prints_no_progress_lines(run_cli, write, monkeypatch) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", "sim-demo-token")
    write({"specs/e.yaml": SPEC, "vars.yaml": VARS})
    args = ("apply", "--var-file", "vars.yaml", "--auto-approve", "--poll-interval", "0.05")
    loud = run_cli(*args)
    quiet = run_cli("--quiet", *args)
    assert loud.code == quiet.code == 0, quiet.err
    assert "e/stage completed" in loud.err  # one line per change, without --quiet
    assert quiet.err == ""
    assert "1 completed" in quiet.out  # the summary is what was asked for
