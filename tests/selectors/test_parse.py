"""The trees selectors parse into: shapes, shorthand, precedence, positions."""

from __future__ import annotations

import pytest

from runner.selectors import (
    Attribute,
    BraceOr,
    Condition,
    Conjunction,
    Selector,
    Term,
    parse_selector,
)

LOCATION, NAME, NODE_TYPE = Attribute.LOCATION, Attribute.NAME, Attribute.NODE_TYPE


def term(*conditions: tuple[Attribute, str], up: bool = False, down: bool = False) -> Term:
    return Term(tuple(Condition(a, v) for a, v in conditions), upstream=up, downstream=down)


def union_of(*conjunctions: tuple[Term | BraceOr, ...]) -> Selector:
    return Selector(tuple(Conjunction(terms) for terms in conjunctions))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("{ ORDERS }", union_of((term((NAME, "ORDERS")),))),
        ("{ name: ORDERS }", union_of((term((NAME, "ORDERS")),))),
        ('{"DIM CUSTOMER"}', union_of((term((NAME, "DIM CUSTOMER")),))),
        ("{ * }", union_of((term(),))),
        ('{ "*" }', union_of((term((NAME, "*")),))),
        ("{ 'say \"hi\"' }", union_of((term((NAME, 'say "hi"')),))),
        ("{ C++ }", union_of((term((NAME, "C++")),))),
        # attribute order, separators and letter case do not matter
        (
            "{ name: A location: L }",
            union_of((term((LOCATION, "L"), (NAME, "A")),)),
        ),
        (
            "{location:L,name:A}",
            union_of((term((LOCATION, "L"), (NAME, "A")),)),
        ),
        (
            "{ NAME: A  LoCaTiOn : L }",
            union_of((term((LOCATION, "L"), (NAME, "A")),)),
        ),
        # lineage
        ("+{a}", union_of((term((NAME, "a"), up=True),))),
        ("{a}+", union_of((term((NAME, "a"), down=True),))),
        ("+{a}+", union_of((term((NAME, "a"), up=True, down=True),))),
        ("{a}+ +{b}", union_of((term((NAME, "a"), down=True), term((NAME, "b"), up=True)))),
        # precedence: AND (in any spelling) binds tighter than OR (in any spelling)
        (
            "{a} {b} OR {c}",
            union_of((term((NAME, "a")), term((NAME, "b"))), (term((NAME, "c")),)),
        ),
        (
            "{a} || {b},{c} and {d}{e}",
            union_of(
                (term((NAME, "a")),),
                tuple(term((NAME, x)) for x in "bcde"),
            ),
        ),
        ("{a}or{b}", union_of((term((NAME, "a")),), (term((NAME, "b")),))),
        # in-brace OR
        (
            "{ A || name: B location: L }+",
            union_of(
                (
                    BraceOr(
                        (
                            (Condition(NAME, "A"),),
                            (Condition(LOCATION, "L"), Condition(NAME, "B")),
                        ),
                        downstream=True,
                    ),
                )
            ),
        ),
        ("{ * or a }", union_of((BraceOr(((), (Condition(NAME, "a"),))),))),
        # quoted keywords are values
        ('{ "or" }', union_of((term((NAME, "or")),))),
        ("{ nodeType: 'AND' }", union_of((term((NODE_TYPE, "AND")),))),
        ("{ name: '' }", union_of((term((NAME, "")),))),
    ],
)
def test_parses_into_the_expected_tree(text: str, tree: Selector) -> None:
    assert parse_selector(text) == tree


def test_positions_are_one_based_columns_and_do_not_count_for_equality() -> None:
    tree = parse_selector('{a} OR +{ nodeType: View  name: "X Y" }')
    first = tree.alternatives[0].terms[0]
    second = tree.alternatives[1].terms[0]
    assert isinstance(second, Term)
    assert first.column == 1
    assert second.column == 8
    assert [(c.attribute, c.column, c.spelling) for c in second.conditions] == [
        (NODE_TYPE, 11, "nodeType"),
        (NAME, 27, "name"),
    ]
    assert tree == parse_selector('{ a }   OR  +{name:"X Y" nodeType:View}')
    assert tree.text == '{a} OR +{ nodeType: View  name: "X Y" }'


def test_in_brace_or_remembers_where_its_operator_is() -> None:
    (atom,) = parse_selector("{ A OR B || C }").atoms()
    assert isinstance(atom, BraceOr)
    assert (atom.column, atom.operator_column) == (1, 5)


def test_values_keep_their_letter_case_and_spaces() -> None:
    (atom,) = parse_selector("{ subgraph: '  My Dims ' }").atoms()
    assert isinstance(atom, Term)
    assert atom.conditions == (Condition(Attribute.SUBGRAPH, "  My Dims "),)


def test_a_tree_cannot_hold_a_value_that_no_text_can_spell() -> None:
    with pytest.raises(ValueError, match="both quote marks"):
        Condition(NAME, 'it\'s "x"')
