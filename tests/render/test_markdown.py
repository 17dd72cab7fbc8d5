"""The pull-request comment: summary first, under its size limit, user text escaped."""

from __future__ import annotations

import re

from runner.plan import Action, FieldChange, Plan, PlannedRun, PlanWarning
from runner.render import render_plan_markdown
from tests.render._plans import environment, plan_with, planned_run

CUT_NOTE = re.compile(r"Details of (\d+) runs? were cut to fit a comment")


def _request(env: int, run: int) -> dict[str, object]:
    return {
        "runDetails": {
            "environmentID": str(env),
            "includeNodesSelector": f"{{ location: STAGE_{run:03} name: NODE_{run:03}_* }}+",
            "excludeNodesSelector": "{ nodeType: View } OR { name: TMP_* }",
            "parallelism": 8,
        },
        "parameters": {f"parameter_{i}": f"a fairly long value number {i}" for i in range(8)},
    }


def _run(env: int, run: int, action: Action) -> PlannedRun:
    name = f"run-{run:03}"
    changes: tuple[FieldChange, ...] = ()
    if action is Action.CHANGED:
        changes = (FieldChange("runDetails.parallelism", 16, 8),)
    warnings: tuple[PlanWarning, ...] = ()
    if run % 10 == 0:
        warnings = (PlanWarning("force", "forceIgnoreEnvironmentStatus is set", f"env{env}", name),)
    return planned_run(
        f"env{env}",
        name,
        action,
        request=_request(env, run),
        changes=changes,
        warnings=warnings,
    )


def big_plan() -> Plan:
    """200 runs in 4 environments: all new, all changed, mostly unchanged, and a mix."""
    actions = [
        [Action.NEW] * 50,
        [Action.CHANGED] * 50,
        [Action.UNCHANGED] * 45 + [Action.CHANGED] * 5,
        [Action.NEW, Action.CHANGED, Action.UNCHANGED, Action.UNCHANGED, Action.UNCHANGED] * 10,
    ]
    return plan_with(
        *(
            environment(f"env{e}", [_run(e, r, a) for r, a in enumerate(acts)])
            for e, acts in enumerate(actions)
        )
    )


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| env")]


def test_a_200_run_plan_fits_a_comment_with_the_whole_summary() -> None:
    plan = big_plan()
    assert len(render_plan_markdown(plan, limit=10**9)) > 60_000  # so something must be cut
    markdown = render_plan_markdown(plan)
    assert len(markdown) <= 60_000
    assert markdown.startswith("### Plan: 60 new, 65 changed, 75 unchanged, 0 removed.")
    assert [row.split(" | ")[1] for row in _table_rows(markdown)] == ["50", "50", "50", "50"]
    cut = CUT_NOTE.search(markdown)
    assert cut is not None
    assert "run `runner plan` locally or download the plan file" in markdown
    assert "<details>" in markdown  # some details still fit


def test_unchanged_runs_are_cut_before_changed_ones() -> None:
    plan = big_plan()
    full = render_plan_markdown(plan, limit=10**9)
    markdown = render_plan_markdown(plan, limit=len(full) - 1)
    assert CUT_NOTE.search(markdown) is not None
    assert re.search(r"^=     \d+ unchanged runs not shown$", markdown, re.MULTILINE)
    assert markdown.count("<details>") == 4  # every environment keeps its new and changed runs
    assert markdown.count("+     run-") == 60
    assert markdown.count("!     run-") == 65


def test_a_small_limit_keeps_the_summary_and_says_what_was_cut() -> None:
    plan = big_plan()
    markdown = render_plan_markdown(plan, limit=3_000)
    assert len(markdown) <= 3_000
    assert len(_table_rows(markdown)) == 4
    assert "<details>" not in markdown
    cut = CUT_NOTE.search(markdown)
    assert cut is not None and int(cut.group(1)) == 200


def test_errors_are_kept_before_warnings_when_the_list_is_cut() -> None:
    warn = PlanWarning("w", "a warning " + "x" * 200, "env0", "r")
    fail = PlanWarning("f", "this run will be refused", "env0", "r", fails=True)
    run = planned_run("env0", "r", warnings=(warn,) * 30 + (fail,))
    markdown = render_plan_markdown(plan_with(environment("env0", [run])), limit=2_500)
    assert len(markdown) <= 2_500
    assert "- **error** `env0/r`: this run will be refused" in markdown
    assert re.search(r"… and \d+ more", markdown)


def test_a_limit_below_the_summary_is_still_honoured() -> None:
    assert len(render_plan_markdown(big_plan(), limit=400)) <= 400


def test_errors_come_first_and_are_called_out() -> None:
    refused = PlanWarning("failed-deploy", "Coalesce will refuse this run", "a", "x", fails=True)
    whole = PlanWarning("whole-environment", "refreshes the whole environment", "a", "y")
    plan = plan_with(
        environment(
            "a",
            [planned_run("a", "y", warnings=(whole,)), planned_run("a", "x", warnings=(refused,))],
        )
    )
    markdown = render_plan_markdown(plan)
    assert "> [!CAUTION]\n> 1 run will be refused as written" in markdown
    assert markdown.index("**error** `a/x`") < markdown.index("warning `a/y`")
    assert "| a | 2 | 2 | 0 | 0 | 0 | 1 (**1 error**) |" in markdown


def test_user_text_cannot_break_the_table_or_inject_html() -> None:
    run = planned_run(
        "a|b",
        "x",
        warnings=(PlanWarning("spec", "selector `{ name: A|B }` <img src=x>", "a|b", "x"),),
    )
    plan = plan_with(environment("a|b", [run], status="Odd | status <script>"))
    markdown = render_plan_markdown(plan)
    row = next(line for line in markdown.splitlines() if line.startswith("| a"))
    assert len(re.split(r"(?<!\\)\|", row)) == 10  # 8 cells between 9 unescaped pipes
    prose = re.sub(r"```diff\n.*?\n```", "", markdown, flags=re.DOTALL)  # code shows as text
    assert "<script>" not in prose and "<img" not in prose
    assert "Odd \\| status &lt;script&gt;" in row
    assert "selector \\`{ name: A\\|B }\\` &lt;img src=x&gt;" in markdown


def test_backticks_in_a_value_lengthen_the_fence() -> None:
    request = {"runDetails": {"environmentID": "1"}, "parameters": {"note": "```"}}
    markdown = render_plan_markdown(
        plan_with(environment("a", [planned_run("a", "x", request=request)]))
    )
    assert "````diff\n" in markdown
    assert '+       parameters.note: "```"' in markdown


def test_changed_lines_use_the_mark_github_colours() -> None:
    change = FieldChange("runDetails.parallelism", 16, 8)
    request = {"runDetails": {"environmentID": "1", "parallelism": 8}}
    run = planned_run("a", "x", Action.CHANGED, request=request, changes=(change,))
    markdown = render_plan_markdown(plan_with(environment("a", [run])))
    assert "!       runDetails.parallelism: 16 -> 8" in markdown.splitlines()
    assert "<details><summary>a: 1 to fire (0 new, 1 changed, 0 unchanged)" in markdown


# -- the sticky comment: its marker, and its size whatever the plan -----------------------


def test_the_marker_names_the_scope_and_is_the_same_for_the_same_scope() -> None:
    from runner.render import plan_marker

    marker = plan_marker({"path": ["specs"], "env": ["prod"], "run": []})
    assert marker == "<!-- runner:plan path=specs env=prod -->"
    again = plan_marker({"path": ["specs", "specs"], "env": ["staging", "prod"]})
    assert again == plan_marker({"path": ["specs"], "env": ["prod", "staging"]})
    assert again == "<!-- runner:plan path=specs env=prod,staging -->"
    hostile = plan_marker({"path": ["a b/--> <script>"], "run": ["load-*"]})
    assert hostile.count("-->") == 1 and hostile.endswith(" -->")
    assert "run=load-*" in hostile
    markdown = render_plan_markdown(big_plan(), marker=marker)
    assert markdown.startswith(marker + "\n\n### Plan:")


def _huge_plan() -> Plan:
    """500 environments of 20 runs: new, changed and unchanged, some with warnings."""
    actions = [Action.NEW, Action.CHANGED, Action.UNCHANGED, Action.UNCHANGED]
    return plan_with(
        *(
            environment(
                f"analytics-{e:03}",
                [
                    planned_run(
                        f"analytics-{e:03}",
                        f"load-{r:02}",
                        actions[(e + r) % 4],
                        request={
                            "runDetails": {
                                "environmentID": str(e),
                                "includeNodesSelector": f"{{ location: STAGE_{r:02} }}+",
                                "parallelism": 8,
                            },
                        },
                        changes=(FieldChange("runDetails.parallelism", 16, 8),)
                        if actions[(e + r) % 4] is Action.CHANGED
                        else (),
                        warnings=(PlanWarning("w", "a warning", f"analytics-{e:03}", "x"),)
                        if r == 0 and e % 50 == 0
                        else (),
                    )
                    for r in range(20)
                ],
            )
            for e in range(500)
        )
    )


def test_a_plan_of_500_environments_fits_a_comment_and_says_it_was_truncated() -> None:
    from runner.render import render_plan_summary

    plan = _huge_plan()
    comment = render_plan_markdown(plan, marker="<!-- runner:plan path=specs -->")
    assert len(comment) <= 65_536
    assert comment.startswith("<!-- runner:plan path=specs -->\n\n### Plan: ")
    truncated = re.search(
        r"\*\*truncated: (\d+) environments not shown, see the step summary", comment
    )
    assert truncated is not None
    shown = comment.count("<details>")
    assert int(truncated.group(1)) == 500 - shown > 0
    assert "| analytics-000 |" in comment  # the summary table comes first

    summary = render_plan_summary(plan)
    assert len(summary.encode()) <= 1024 * 1024
    assert "truncated" not in summary  # complete: every environment in full
    assert summary.count("<details>") == 500
    assert summary.count("\n+     load-") + summary.count("\n!     load-") == 5_000
    assert summary.count("\n=     load-") == 5_000


def test_a_summary_too_large_for_a_step_is_truncated_the_same_way() -> None:
    from runner.render.plan_markdown import SUMMARY_LIMIT_BYTES, render_plan_summary

    plan = plan_with(*(big_plan().environments * 60))  # 240 environments of 50 runs
    assert len(render_plan_markdown(plan, limit=10**9).encode()) > SUMMARY_LIMIT_BYTES
    summary = render_plan_summary(plan)
    assert len(summary.encode()) <= SUMMARY_LIMIT_BYTES
    assert re.search(
        r"\*\*truncated: \d+ environments not shown, run `runner plan` locally or download "
        "the plan file",
        summary,
    )


def test_when_even_the_table_does_not_fit_rows_with_nothing_to_review_go_first() -> None:
    quiet = [
        environment(f"quiet-{i}", [planned_run(f"quiet-{i}", "r", Action.UNCHANGED)])
        for i in range(40)
    ]
    busy = [environment(f"busy-{i}", [planned_run(f"busy-{i}", "r")]) for i in range(5)]
    plan = plan_with(*busy, *quiet)
    markdown = render_plan_markdown(plan, limit=3_000)
    assert len(markdown) <= 3_000
    assert all(f"| busy-{i} |" in markdown for i in range(5))
    assert "left out of the table too" in markdown
    assert re.search(r"truncated: 45 environments not shown", markdown)
