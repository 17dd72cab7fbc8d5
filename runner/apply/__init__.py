"""Applying plans: firing runs in batches within limits, waiting, and recording it all."""

from runner.apply.model import (
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    EnvironmentJob,
    FailedNode,
    RunReport,
    RunState,
)
from runner.apply.service import (
    Prepared,
    aapply_plan,
    apply_plan,
    apply_prepared,
    load_specs_for_plan,
    prepare,
)
from runner.runtime import Runtime

__all__ = [
    "ApplyEvent",
    "ApplyOptions",
    "ApplyResult",
    "EnvironmentJob",
    "FailedNode",
    "Prepared",
    "RunReport",
    "RunState",
    "Runtime",
    "aapply_plan",
    "apply_plan",
    "apply_prepared",
    "load_specs_for_plan",
    "prepare",
]
