"""docs/library.md's example runs as written: inside ``asyncio.run(main())`` it plans and
applies with the async entry points, reports events and results, exits 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import runner

DOC = Path(__file__).resolve().parents[1] / "docs" / "library.md"


def test_the_library_example_runs_inside_a_running_event_loop(tmp_path: Path) -> None:
    [example] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "demo/stage: firing"
    assert "demo/stage: completed" in lines
    assert lines[-1] == "demo/stage ended completed, run 1"


def test_every_name_the_doc_lists_is_importable_from_runner() -> None:
    listed = set(re.findall(r"^\| `([A-Za-z_]+)[(`]", DOC.read_text(), re.M))
    assert {"plan_specs", "aplan_specs", "apply_plan", "aapply_plan", "PlanRequest"} <= listed
    assert listed <= set(runner.__all__)
    for name in listed:
        assert getattr(runner, name) is not None
