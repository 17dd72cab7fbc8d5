"""Malformed selectors: the exact message and the 1-based column of each problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.errors import RunnerError
from runner.selectors import SelectorError, parse_selector

UNCLOSED = "unclosed '{': add '}' to end this term"
STRAY = "unexpected '}': no '{' is open here"
EMPTY_TERM = "empty term '{ }': put a name, attributes or '*' (all nodes) between the braces"

# (selector text, message, column)
ERRORS = [
    # unbalanced braces
    ("{ name: ORDERS", UNCLOSED, 1),
    ("{ a } OR { b", UNCLOSED, 10),
    ("{ name: a { b }", UNCLOSED, 1),
    ("{ a } }", STRAY, 7),
    ("}", STRAY, 1),
    # unknown attributes, with a suggestion when one is close
    ("{ nodetyp: View }", "unknown attribute 'nodetyp': did you mean 'nodeType'?", 3),
    (
        "{ location: X node_type: View }",
        "unknown attribute 'node_type': did you mean 'nodeType'?",
        15,
    ),
    ("{ Nmae: X }", "unknown attribute 'Nmae': did you mean 'name'?", 3),
    ("{ id: 98 }", "unknown attribute 'id': did you mean 'nodeID'?", 3),
    ("{ type: View }", "unknown attribute 'type': did you mean 'nodeType'?", 3),
    (
        "{ colour: red }",
        "unknown attribute 'colour': use one of location, subgraph, nodeType, name, nodeID",
        3,
    ),
    # empty terms
    ("{ }", EMPTY_TERM, 1),
    ("{}", EMPTY_TERM, 1),
    ("{ a } OR +{   }", EMPTY_TERM, 11),
    # dangling operators, between terms and inside braces
    ("{a} OR", "'OR' has nothing after it: put a term on its right, or remove it", 5),
    ("{a} ||  ", "'||' has nothing after it: put a term on its right, or remove it", 5),
    ("{a} and", "'and' has nothing after it: put a term on its right, or remove it", 5),
    ("{a},", "',' has nothing after it: put a term on its right, or remove it", 4),
    ("OR {a}", "'OR' has nothing before it: put a term on its left, or remove it", 1),
    ("  , {a}", "',' has nothing before it: put a term on its left, or remove it", 3),
    ("{a} OR OR {b}", "'OR' right after 'OR': two operators in a row; remove one", 8),
    ("{a} AND || {b}", "'||' right after 'AND': two operators in a row; remove one", 9),
    ("{ a || }", "'||' has nothing after it: put a term on its right, or remove it", 5),
    ("{ || a }", "'||' has nothing before it: put a term on its left, or remove it", 3),
    ("{ name: a, }", "',' has nothing after it: put a term on its right, or remove it", 10),
    ("{ name: a,, location: b }", "',' right after ',': two operators in a row; remove one", 11),
    # unterminated quotes
    ('{ name: "abc }', 'unterminated quote: add a closing " to end the value', 9),
    ("{ name: 'abc }", "unterminated quote: add a closing ' to end the value", 9),
    ("{ 'ORDERS }", "unterminated quote: add a closing ' to end the value", 3),
    # everything else
    ("", "empty selector: write a term such as '{ name: ORDERS }', or leave it out", 1),
    ("   ", "empty selector: write a term such as '{ name: ORDERS }', or leave it out", 4),
    (
        "{a}+{b}",
        "ambiguous '+' between two terms: write '{ ... }+ { ... }' to add the first term's "
        "downstream nodes, or '{ ... } +{ ... }' to add the second term's upstream nodes",
        4,
    ),
    (
        "+ {a}",
        "'+' must touch the brace of its term: '+{ ... }' adds upstream nodes, "
        "'{ ... }+' adds downstream nodes",
        1,
    ),
    (
        "{a} +",
        "'+' must touch the brace of its term: '+{ ... }' adds upstream nodes, "
        "'{ ... }+' adds downstream nodes",
        5,
    ),
    (
        "{ ORDERS ITEMS }",
        "unexpected 'ITEMS' after 'ORDERS': a bare name stands alone in its braces; quote a "
        "name that has spaces, or write 'attribute: value' pairs",
        10,
    ),
    (
        "{ * location: X }",
        "unexpected 'location' after '*': a bare name stands alone in its braces; quote a "
        "name that has spaces, or write 'attribute: value' pairs",
        5,
    ),
    (
        "{ name: a AND location: b }",
        "'AND' inside braces: separate attributes with a space or ',', or join whole terms: "
        "'{ ... } AND { ... }'",
        11,
    ),
    ("{ name: }", "missing value after 'name:': write name: VALUE (quoted if it has spaces)", 9),
    (
        "{ name: or }",
        "'or' is an operator, not a value: quote it (name: \"or\") to match that text",
        9,
    ),
    (
        "{ name a }",
        "expected ':' after 'name': write attributes as 'attribute: value', and quote values "
        "that have spaces",
        8,
    ),
    (
        "{ name: DIM CUSTOMER }",
        "expected ':' after 'CUSTOMER': write attributes as 'attribute: value', and quote "
        "values that have spaces",
        22,
    ),
    ("{ name: a:b }", "unexpected ':' after a value: quote values that contain ':'", 10),
    ("{ : a }", "unexpected ':': an attribute name goes before it, as in 'name: ORDERS'", 3),
    ('{ "name": a }', "attribute names are written without quotes: name: VALUE", 3),
    ("{ a | b }", "a single '|' is not an operator: write '||' or OR", 5),
    ("{a} ORDERS", "unexpected 'ORDERS': terms go inside braces, as in '{ ORDERS }'", 5),
    ("name: ORDERS", "unexpected 'name': terms go inside braces, as in '{ name }'", 1),
    (
        '{a} "b"',
        "unexpected '\"b\"' outside braces: write terms such as '{ name: ORDERS }'",
        5,
    ),
]


@pytest.mark.parametrize(("text", "message", "column"), ERRORS)
def test_reports_the_problem_and_its_column(text: str, message: str, column: int) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert (caught.value.message, caught.value.column) == (message, column)
    assert caught.value.text == text


def test_selector_errors_are_runner_errors_that_show_the_column() -> None:
    with pytest.raises(RunnerError) as caught:
        parse_selector("{ nodetyp: View }")
    assert str(caught.value) == (
        "unknown attribute 'nodetyp': did you mean 'nodeType'? (selector column 3)"
    )


def test_the_first_problem_in_reading_order_is_reported() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector("OR { a } }")
    assert caught.value.column == 1


SELECTORISH = st.lists(
    st.sampled_from(
        [*"{}+:,|\"' *?\t\nabAB_1", "OR", "or", "AND", "||", "name:", "nodeType:", "İ"]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(SELECTORISH, st.text(max_size=40)))
def test_any_text_parses_or_raises_only_selector_error(text: str) -> None:
    try:
        parse_selector(text)
    except SelectorError as error:
        assert error.message
        assert 1 <= error.column <= len(text) + 1
