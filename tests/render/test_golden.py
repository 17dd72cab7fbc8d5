"""The three views of the example specs' plans, compared with reviewed golden files."""

from __future__ import annotations

import pytest

from runner.plan import Plan
from runner.render import render_plan_json, render_plan_markdown, render_plan_text
from tests.render._golden import assert_golden
from tests.render._plans import REPO, all_canaries

SCENARIOS = ["new_plan", "changed_plan", "online_plan"]


def _views(plan: Plan, *, show_nodes: bool) -> dict[str, str]:
    return {
        "txt": render_plan_text(plan, color=False, show_nodes=show_nodes),
        "json": render_plan_json(plan),
        "md": render_plan_markdown(plan),
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("view", ["txt", "json", "md"])
def test_view_matches_golden(scenario: str, view: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(scenario)
    rendered = _views(plan, show_nodes=scenario == "online_plan")[view]
    assert str(REPO) not in rendered, "a golden file must not name this machine's paths"
    for canary in all_canaries():
        assert canary not in rendered
    assert_golden(f"{scenario.removesuffix('_plan')}.{view}", rendered)
