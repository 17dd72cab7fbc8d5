"""The runner-validate pre-commit hook, tried as a user's repository would use it:
``pre-commit try-repo <this checkout> runner-validate --all-files``.

try-repo clones this checkout at HEAD; when tracked files have uncommitted changes it
commits them (staged or not) in a shadow clone first, so the hook tried is the working
tree's (a file not yet added to git is left out). pre-commit builds the hook's
environment by installing this checkout with pip (from the package registry): it is
built once per test session, under a PRE_COMMIT_HOME of the session's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
HEAD = 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
GOOD = HEAD + "runs:\n  - name: stage\n    includeNodesSelector: '{ location: STG }'\n"
BAD = HEAD + "runs:\n  - name: stage\n    paralelism: 4\n"  # line 6, column 5


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PATH": f"{PRE_COMMIT.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):  # when run from a hook
        env.pop(name, None)
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(REPO), "runner-validate", "--all-files"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_hook_passes_good_specs_and_fails_a_bad_one_at_its_place(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    repo = tmp_path / "specs-repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / "good.yaml").write_text(GOOD)
    (repo / "README.md").write_text("Our refresh runs.\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")

    good = _try_repo(repo, pre_commit_home)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "runner validate" in good.stdout and "Passed" in good.stdout

    (repo / "specs" / "bad.yaml").write_text(BAD)
    _git(repo, "add", ".")
    bad = _try_repo(repo, pre_commit_home)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert (
        "specs/bad.yaml:6:5: runs[0]: unknown key 'paralelism' (did you mean 'parallelism'?)"
        in bad.stdout
    )
