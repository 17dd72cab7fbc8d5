"""runner: declarative, reviewable refresh runs for Coalesce.

The command line is a thin layer over a library (see docs/library.md)::

    from runner import PlanRequest, plan_specs, apply_plan, open_state
    # in an event loop: aplan_specs, aapply_plan

Names are imported on first use, so ``import runner`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_specs": "runner.spec",
    "RenderOptions": "runner.spec",
    "plan_specs": "runner.plan",
    "aplan_specs": "runner.plan.service",
    "make_plan": "runner.plan",
    "PlanRequest": "runner.plan",
    "Filters": "runner.plan",
    "apply_plan": "runner.apply.service",
    "aapply_plan": "runner.apply.service",
    "ApplyOptions": "runner.apply",
    "ApplyEvent": "runner.apply",
    "ApplyResult": "runner.apply",
    "RunReport": "runner.apply",
    "Runtime": "runner.runtime",
    "open_state": "runner.state",
    "RunnerError": "runner.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
