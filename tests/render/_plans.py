"""Plans to render: the repository's example specs against three baselines, and plans
built directly when a test needs a shape the example specs do not have."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.plan import (
    Action,
    Baseline,
    BaselineRun,
    BatchPlan,
    EnvironmentPlan,
    FieldChange,
    Plan,
    PlanInputs,
    PlannedRun,
    PlanWarning,
    Selection,
    make_plan,
)
from runner.plan.online import EnvironmentFacts
from runner.selectors import Node, NodeGraph
from runner.spec import RenderOptions, SpecSet, load_specs

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2024, 5, 1, 6, 30, tzinfo=dt.UTC)
VERSION = "0.1.0-test"

# Every secret the example specs read, as canaries: none may show in any rendering.
CANARIES = {
    "COALESCE_TOKEN": "CANARY-TOKEN-3b9e",
    "COALESCE_EU_TOKEN": "CANARY-EU-TOKEN-51c0",
    "SNOWFLAKE_KEY_PASS": "CANARY-KEYPASS-a41d",
    "SNOWFLAKE_PASSWORD": "CANARY-PASSWORD-7f3a",
}
CANARY_KEY_LINE = "CANARYKEYMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
CANARY_PEM = f"-----BEGIN PRIVATE KEY-----\n{CANARY_KEY_LINE}\n-----END PRIVATE KEY-----\n"


def all_canaries() -> list[str]:
    return [*CANARIES.values(), CANARY_KEY_LINE]


def load_examples(
    environ: Mapping[str, str], variables: Mapping[str, str] | None = None
) -> SpecSet:
    """The specs under specs/, read from the repository root (so paths are relative)."""
    options = RenderOptions(
        variables=variables or {}, environ=environ, now=NOW, require_secrets=False
    )
    return load_specs(["specs"], options=options, environ=environ)


def plan_of(specs: SpecSet, baseline: Baseline, **extra: Any) -> Plan:
    inputs = PlanInputs(specs=specs, baseline=baseline, now=NOW, tool_version=VERSION, **extra)
    return make_plan(inputs)


def baseline_from(plan: Plan, *, only: tuple[str, ...] = ()) -> dict[str, BaselineRun]:
    """A baseline equal to what ``plan`` fires (optionally only some environments), as
    the state gives it after an apply of that plan."""
    return {
        run.identity: BaselineRun(
            run.environment,
            run.batch,
            run.name,
            copy.deepcopy(run.request),
            job_name=run.job.name if run.job is not None and run.job.by_name else None,
        )
        for run in plan.runs()
        if not only or run.environment in only
    }


def edited_baseline(current: Plan) -> Baseline:
    """The last applied state, as it differs from the example specs in every way a plan shows."""
    runs = baseline_from(current)
    runs["prod/customers"].request["parameters"]["load_date"] = "2024-04-30"
    runs["prod/stage-all"].request["userCredentials"]["snowflakeRole"] = "LOADER"
    # Only whitespace differs: the selector means the same, so the run is unchanged.
    runs["prod/orders"].request["runDetails"]["includeNodesSelector"] = (
        "{location:FACT   name:FCT_ORDERS}+"
    )
    runs["staging/nightly"].request["runDetails"]["parallelism"] = 16
    parameters = runs["staging/dimensions"].request["parameters"]
    del parameters["full_refresh"]
    parameters["debug"] = "1"
    del runs["demo/facts"].request["runDetails"]["excludeNodesSelector"]
    runs["prod/retired"] = BaselineRun(
        "prod", "marts", "retired", {"runDetails": {"environmentID": "12", "jobID": "5"}}
    )
    runs["legacy/nightly"] = BaselineRun(
        "legacy",
        "default",
        "nightly",
        {"runDetails": {"environmentID": "30", "jobID": "2", "parallelism": 4}},
    )
    return Baseline("state", runs)


def _graph(*nodes: tuple[str, str, str, str, tuple[str, ...]]) -> NodeGraph:
    return NodeGraph(
        Node(id=i, name=name, location=loc, node_type=kind, depends_on=deps)
        for i, name, loc, kind, deps in nodes
    )


def online_facts() -> dict[str, EnvironmentFacts]:
    """prod in Failed Deploy, demo with no MART node, analytics unreachable, staging fine."""
    prod = _graph(
        ("1", "STG_ORDERS", "STG", "Stage", ()),
        ("2", "STG_CUSTOMERS", "STG", "Stage", ()),
        ("3", "DIM_CUSTOMERS", "DIM", "Dimension", ("2",)),
        ("4", "FCT_ORDERS", "FACT", "Fact", ("1", "3")),
        ("5", "FCT_ORDERS_V", "FACT", "View", ("4",)),
        ("6", "FCT_ORDERS_DAILY", "FACT", "Fact", ("4",)),
    )
    demo = _graph(
        ("10", "STG_ACCOUNTS", "STG", "Stage", ()),
        ("11", "DIM_ACCOUNTS", "DIM", "Dimension", ("10",)),
        ("12", "FCT_BALANCES", "FACT", "Fact", ("11",)),
        ("13", "FCT_BALANCES_SNAPSHOT", "FACT", "Fact", ("12",)),
    )
    staging = _graph(
        ("20", "STG_ITEMS", "STG", "Stage", ()),
        ("21", "DIM_ITEMS", "DIM", "Dimension", ("20",)),
        ("22", "FCT_SALES", "FACT", "Fact", ("21",)),
    )
    return {
        "prod": EnvironmentFacts("prod", status="Failed Deploy", graph=prod),
        "demo": EnvironmentFacts("demo", status="Deployed", graph=demo),
        "staging": EnvironmentFacts("staging", status="Deployed", graph=staging),
        "analytics": EnvironmentFacts(
            "analytics", offline_reason="unreachable: connection refused"
        ),
    }


# Plans built directly, for shapes and sizes the example specs do not reach.


def planned_run(
    environment: str,
    name: str,
    action: Action = Action.NEW,
    *,
    batch: str = "default",
    request: dict[str, Any] | None = None,
    changes: tuple[FieldChange, ...] = (),
    warnings: tuple[PlanWarning, ...] = (),
    selection: Selection | None = None,
) -> PlannedRun:
    body = request or {"runDetails": {"environmentID": "1", "jobID": "7"}}
    return PlannedRun(
        environment, batch, name, action, body, changes, warnings, selection, f"{environment}.yaml"
    )


def environment(
    name: str,
    runs: list[PlannedRun],
    *,
    removed: tuple[PlannedRun, ...] = (),
    status: str | None = None,
    warnings: tuple[PlanWarning, ...] = (),
) -> EnvironmentPlan:
    return EnvironmentPlan(
        name=name,
        environment_id="1",
        url="https://app.coalescesoftware.io",
        path=f"specs/{name}.yaml",
        batches=(BatchPlan("default", None, "stop", tuple(runs)),) if runs else (),
        removed=removed,
        warnings=warnings,
        status=status,
    )


def plan_with(*environments: EnvironmentPlan) -> Plan:
    serials = {env.name: 1 for env in environments}
    return Plan(environments=environments, baseline="state", created_at=NOW, state_serials=serials)
