"""Golden files: rendered output compared with a file under tests/render/golden/.

``UPDATE_GOLDEN=1 pytest tests/render`` rewrites them; review the diff before committing.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(
            f"no golden file {path.name}: create it with UPDATE_GOLDEN=1 pytest tests/render",
            pytrace=False,
        )
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"golden/{name}",
            tofile="rendered now",
        )
        pytest.fail(
            f"the rendering differs from golden/{name} "
            "(if the change is intended: UPDATE_GOLDEN=1 pytest tests/render):\n" + "".join(diff),
            pytrace=False,
        )
