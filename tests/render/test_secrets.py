"""No secret value reaches any view of a plan, even one that slipped into the plan itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from runner.plan import Baseline, Plan, PlanWarning
from runner.render import render_plan_json, render_plan_markdown, render_plan_text
from runner.secrets import Secret
from runner.spec import RenderOptions, load_specs
from tests.render._plans import environment, plan_of, plan_with, planned_run

PASSWORD = "CANARY-PASSWORD-7f3a"
TOKEN = "CANARY-TOKEN-c2e1"
SPEC = """\
version: 1
environmentID: "4"
coalesce:
  url: https://app.coalescesoftware.io
  token: "{{ secret('COALESCE_TOKEN') }}"
userCredentials:
  snowflakeAuthType: Basic
  snowflakeUsername: LOADER
  snowflakePassword: "{{ secret('SNOWFLAKE_PASSWORD') }}"
runs:
  - name: nightly
    jobID: "3"
"""


def _all_views(plan: Plan) -> dict[str, str]:
    return {
        "text": render_plan_text(plan, color=False, show_nodes=True),
        "colour": render_plan_text(plan, color=True, show_nodes=True),
        "json": render_plan_json(plan),
        "markdown": render_plan_markdown(plan),
        "short markdown": render_plan_markdown(plan, limit=500),
    }


def test_secrets_read_by_a_spec_appear_in_no_view(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(SPEC)
    environ = {"COALESCE_TOKEN": TOKEN, "SNOWFLAKE_PASSWORD": PASSWORD}
    options = RenderOptions(environ=environ, now=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    specs = load_specs([tmp_path / "env.yaml"], options=options, environ=environ)
    plan = plan_of(specs, Baseline("state", {}))
    views = _all_views(plan)
    for name, text in views.items():
        assert PASSWORD not in text, name
        assert TOKEN not in text, name
    assert '"snowflakePassword": "(secret)"' in views["json"]  # the field is there, redacted


@pytest.mark.parametrize("value", ["CANARY_PASS|7f3a`<b>", "CANARY-PASSWORD-7f3a"])
def test_a_secret_that_slipped_into_the_plan_is_scrubbed_from_every_view(value: str) -> None:
    Secret(value)  # read by this process, so the scrubber knows it
    request = {"runDetails": {"environmentID": "1"}, "parameters": {"password": value}}
    leak = PlanWarning("spec", f"server said: bad password {value}", "env", "run")
    run = planned_run("env", "run", request=request, warnings=(leak,))
    plan = plan_with(environment("env", [run], status=f"Failed {value}"))
    for name, text in _all_views(plan).items():
        assert "7f3a" not in text, name  # nor an escaped form of it
        assert "(secret)" in text, name
