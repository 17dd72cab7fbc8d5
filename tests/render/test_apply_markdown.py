"""The apply report in markdown: what Coalesce says about a node is shown, never
rendered as markup in a pull request or a job summary."""

from __future__ import annotations

from runner.apply.model import ApplyResult, FailedNode, RunReport, RunState
from runner.render.apply_output import render_apply_markdown

HOSTILE = "[click me](https://evil.example) *loud* <img src=x> | `code` #heading"


def test_a_nodes_error_is_text_in_the_report_not_markup() -> None:
    run = RunReport("prod", "marts", "orders", RunState.FAILED, run_counter=7)
    run.failed_nodes.append(FailedNode("n1", "FCT_ORDERS", HOSTILE))
    report = render_apply_markdown(ApplyResult(apply_id=1, runs=(run,)))

    row = next(line for line in report.splitlines() if line.startswith("| prod "))
    assert "[click me](" not in row and "<img" not in row and "*loud*" not in row
    assert row.count(" | ") == 6, "the error's pipe does not split the row"
    assert "click me" in row and "FCT" in row
