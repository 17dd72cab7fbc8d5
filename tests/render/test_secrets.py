"""No secret value reaches any view of a plan, even one that slipped into the plan itself."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from runner.plan import Baseline, Plan
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


@pytest.mark.parametrize("short", ["x", "1", "e", "true", "null", "run", "stop", "env"])
def test_a_short_secret_changes_no_view_of_the_plan(short: str) -> None:
    """Views are never edited: a secret that is also a key, an enum or a name leaves every
    view exactly as it is without it (and the JSON valid)."""
    request = {"runDetails": {"environmentID": "1"}, "parameters": {"mode": "stop"}}
    run = planned_run("env", "run", request=request)
    plan = plan_with(environment("env", [run]))
    before = _all_views(plan)
    Secret(short)
    assert _all_views(plan) == before
    json.loads(before["json"])
