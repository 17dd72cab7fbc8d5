"""Planning: what apply would fire, and how it differs from a baseline."""

from runner.output import FORMAT_VERSION
from runner.plan.baseline import Baseline, BaselineRun, git_baseline, state_baseline
from runner.plan.builder import Filters, PlanInputs, make_plan
from runner.plan.document import plan_from_document, plan_to_document
from runner.plan.model import (
    Action,
    BatchPlan,
    EnvironmentPlan,
    FieldChange,
    Plan,
    PlannedRun,
    PlanWarning,
    Selection,
    request_hash,
)
from runner.plan.planfile import check_fresh, read_plan_file, write_plan_file
from runner.plan.service import PlanRequest, PlanResult, aplan_specs, plan_specs

__all__ = [
    "FORMAT_VERSION",
    "Action",
    "Baseline",
    "BaselineRun",
    "BatchPlan",
    "EnvironmentPlan",
    "FieldChange",
    "Filters",
    "Plan",
    "PlanInputs",
    "PlanRequest",
    "PlanResult",
    "PlanWarning",
    "PlannedRun",
    "Selection",
    "aplan_specs",
    "check_fresh",
    "git_baseline",
    "make_plan",
    "plan_from_document",
    "plan_specs",
    "plan_to_document",
    "read_plan_file",
    "request_hash",
    "state_baseline",
    "write_plan_file",
]
