"""runner: declarative, reviewable refresh runs for Coalesce.

The command line is a thin layer over a library::

    from runner import load_specs, make_plan, apply_plan

Names are imported on first use, so ``import runner`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_specs": "runner.spec",
    "plan_specs": "runner.plan",
    "make_plan": "runner.plan",
    "apply_plan": "runner.apply.service",
    "RunnerError": "runner.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
