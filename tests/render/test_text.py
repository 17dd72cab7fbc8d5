"""The text view: marks, diffs, summaries and colour as a person at a terminal sees them."""

from __future__ import annotations

import re

from runner.plan import Action, Baseline, FieldChange, Plan
from runner.render import render_plan_text
from tests.render._plans import (
    baseline_from,
    environment,
    load_examples,
    plan_of,
    plan_with,
    planned_run,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_plain_text_has_no_escape_codes(online_plan: Plan) -> None:
    assert "\x1b" not in render_plan_text(online_plan, color=False, show_nodes=True)


def test_colour_marks_new_runs_green_and_errors_red(online_plan: Plan) -> None:
    text = render_plan_text(online_plan, color=True)
    assert _line_with(text, "+ stage-all").startswith("\x1b[32m")
    assert (
        _line_with(text, "error: the environment is in Failed Deploy")
        .lstrip()
        .startswith("\x1b[1;31m")
    )
    assert _line_with(text, "= hourly-job").startswith("\x1b[2m")


def test_colour_marks_changed_yellow_and_removed_red(changed_plan: Plan) -> None:
    text = render_plan_text(changed_plan, color=True)
    assert _line_with(text, "~ runDetails.parallelism: 16 -> 8").startswith("\x1b[33m")
    assert _line_with(text, "- retired (batch marts)").startswith("\x1b[31m")


def test_colour_only_adds_codes_and_warning_signs(online_plan: Plan) -> None:
    coloured = render_plan_text(online_plan, color=True, show_nodes=True)
    plain = render_plan_text(online_plan, color=False, show_nodes=True)
    assert ANSI.sub("", coloured).replace("\u26a0 ", "").replace("\u2716 ", "") == plain


def test_changed_run_shows_each_changed_field(changed_plan: Plan) -> None:
    text = render_plan_text(changed_plan, color=False)
    assert '~ parameters.load_date: "2024-04-30" -> "2024-05-01"' in text
    assert '+ parameters.full_refresh: "true"' in text
    assert '- parameters.debug: "1"' in text
    assert '~ userCredentials.snowflakeRole: "LOADER" -> "TRANSFORMER"' in text


def test_selector_changed_only_in_whitespace_is_unchanged(changed_plan: Plan) -> None:
    text = render_plan_text(changed_plan, color=False)
    assert "    = orders (unchanged)" in text.splitlines()
    assert "includeNodesSelector" not in _line_with(text, "orders")


def test_summaries_per_environment_and_overall(changed_plan: Plan) -> None:
    lines = render_plan_text(changed_plan, color=False).splitlines()
    assert "prod: 4 to fire (0 new, 2 changed, 2 unchanged), 1 removed, 0 warnings" in lines
    assert lines[-2] == "Plan: 0 new, 5 changed, 7 unchanged, 2 removed."


def test_nothing_changed_says_so_and_what_apply_would_still_fire(
    at_repo: object, with_secrets: dict[str, str]
) -> None:
    specs = load_examples(with_secrets)
    current = plan_of(specs, Baseline("state", {}))
    same = plan_of(specs, Baseline("state", baseline_from(current)))
    text = render_plan_text(same, color=False)
    assert "No changes. Apply would fire the 12 unchanged runs again" in text
    assert "+ " not in text and "~ " not in text


def test_empty_plan() -> None:
    assert "No changes. Nothing to fire." in render_plan_text(plan_with(), color=False)


def test_node_names_only_when_asked(online_plan: Plan) -> None:
    short = render_plan_text(online_plan, color=False)
    assert "selection: 2 nodes" in short
    assert "STG_CUSTOMERS" not in short
    assert "STG_CUSTOMERS" in render_plan_text(online_plan, color=False, show_nodes=True)


def test_parameter_note_once_per_environment_that_sends_parameters() -> None:
    with_parameters = {"runDetails": {"environmentID": "1"}, "parameters": {"day": "mon"}}
    plan = plan_with(
        environment("a", [planned_run("a", "x", request=with_parameters)]),
        environment("b", [planned_run("b", "y"), planned_run("b", "z")]),
    )
    text = render_plan_text(plan, color=False)
    assert text.count("parameters replace the environment's parameter map") == 1
    assert text.index("parameters replace") < text.index("b (environment")


def test_changed_field_is_not_also_listed_as_unchanged() -> None:
    change = FieldChange("runDetails.parallelism", 16, 8)
    run = planned_run(
        "a",
        "x",
        Action.CHANGED,
        request={"runDetails": {"environmentID": "1", "jobID": "7", "parallelism": 8}},
        changes=(change,),
    )
    text = render_plan_text(plan_with(environment("a", [run])), color=False)
    assert "parallelism: 8" not in text
    assert '        jobID: "7"' in text.splitlines()
