"""A state the user may only read: `plan`, `status` and `validate` work on it, and the
commands that record something say plainly that they cannot.

Root ignores file modes, so when the suite runs as root each command runs in a child
that has given up the capabilities that bypass them (``setpriv``); as anyone else the
modes alone do it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operations.conftest import TOKEN, RunCli, Workspace, apply_args

# Capabilities that let root write (or read) what the file modes forbid.
_BYPASS = "-dac_override,-dac_read_search,-fowner"


def _without_bypass() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file read-only to us")
    return [setpriv, f"--bounding-set={_BYPASS}"]


def _runner(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workspace.root),
        "COALESCE_TOKEN": TOKEN,
        "SNOWFLAKE_PASSWORD": "not-a-canary",
    }
    return subprocess.run(
        [*_without_bypass(), sys.executable, "-m", "runner", *args],
        cwd=workspace.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _make_read_only(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)


@pytest.fixture
def read_only_state(run_cli: RunCli, workspace: Workspace) -> Iterator[Path]:
    assert run_cli(*apply_args("good")).code == 0
    _make_read_only(workspace.state.parent)
    yield workspace.state
    workspace.state.parent.chmod(stat.S_IRWXU)


def test_plan_status_and_validate_read_a_read_only_state(
    workspace: Workspace, read_only_state: Path
) -> None:
    before = read_only_state.read_bytes()

    plan = _runner(workspace, "plan", "specs", "--offline")
    assert plan.returncode == 0, plan.stderr
    assert "1 unchanged" in plan.stdout  # it read what the apply recorded

    status = _runner(workspace, "status")
    assert status.returncode == 0, status.stderr
    assert "Last apply: 1 (succeeded)" in status.stdout

    validate = _runner(workspace, "validate", "specs")
    assert validate.returncode == 0, validate.stderr

    assert read_only_state.read_bytes() == before
    assert sorted(p.name for p in read_only_state.parent.iterdir()) == ["state.db"]


def test_a_command_that_records_says_the_state_is_read_only(
    workspace: Workspace, read_only_state: Path
) -> None:
    for args in (apply_args("good"), ["status", "--refresh"], ["unlock", "ops"]):
        done = _runner(workspace, *args)
        assert done.returncode == 1, done.stdout
        assert "read-only" in done.stderr
        assert "Traceback" not in done.stderr
        assert str(Path(".runner") / "state.db") in done.stderr


def test_a_read_only_folder_with_unmerged_changes_is_refused_with_how_to_fix(
    workspace: Workspace, read_only_state: Path
) -> None:
    log = read_only_state.with_name("state.db-wal")
    read_only_state.parent.chmod(stat.S_IRWXU)
    log.write_bytes(b"\0" * 32)  # changes SQLite has not merged into the file yet
    _make_read_only(read_only_state.parent)

    done = _runner(workspace, "status")
    assert done.returncode == 1
    assert "not yet merged" in done.stderr
    assert "runner status" in done.stderr  # the fix
