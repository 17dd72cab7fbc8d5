"""Warnings for selectors Coalesce accepts but reads differently than their author meant."""

from __future__ import annotations

import pytest

from runner.selectors import SelectorWarning, lint_selector, parse_selector

IN_BRACE_OR = (
    "an OR inside one pair of braces matches no node at all in Coalesce: "
    "give each side its own braces: "
)


@pytest.mark.parametrize(
    ("text", "warnings"),
    [
        ("{ A || B }", [SelectorWarning(IN_BRACE_OR + "{ name: A } OR { name: B }", 5)]),
        ("{ A OR B }", [SelectorWarning(IN_BRACE_OR + "{ name: A } OR { name: B }", 5)]),
        (
            "{ x } AND +{ name: A or location: L name: B || * }+",
            [
                SelectorWarning(
                    IN_BRACE_OR + "+{ name: A }+ OR +{ location: L name: B }+ OR +{ * }+",
                    22,
                )
            ],
        ),
        (
            "{ nodetype: View } OR { NAME: a location: L }",
            [
                SelectorWarning(
                    "attribute 'nodetype' is written 'nodeType' in Coalesce's documentation; "
                    "use 'nodeType' so that Coalesce reads it as this program does",
                    3,
                ),
                SelectorWarning(
                    "attribute 'NAME' is written 'name' in Coalesce's documentation; "
                    "use 'name' so that Coalesce reads it as this program does",
                    25,
                ),
            ],
        ),
    ],
)
def test_warns_with_the_column(text: str, warnings: list[SelectorWarning]) -> None:
    assert lint_selector(parse_selector(text)) == warnings


def test_warnings_come_in_the_order_of_the_text() -> None:
    warnings = lint_selector(parse_selector("{ NAME: a || b } OR { B OR C }"))
    assert [warning.column for warning in warnings] == [3, 11, 25]


@pytest.mark.parametrize(
    "text",
    [
        "{ A } OR { B }",
        "{ location: MART name: ORDERS }+",
        '{ name: "A || B" }',
        "{ * }",
        "{ ORDERS }",
        "{ subgraph: G nodeID: 1 }",
    ],
)
def test_a_sound_selector_draws_no_warning(text: str) -> None:
    assert lint_selector(parse_selector(text)) == []
