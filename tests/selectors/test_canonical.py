"""The canonical text: one spelling per meaning, which parses back to the same tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.selectors import (
    Attribute,
    BraceOr,
    Condition,
    Conjunction,
    Selector,
    SelectorError,
    Term,
    canonical,
    canonical_text,
    parse_selector,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{name:STG_SUPPLIER}", "{ name: STG_SUPPLIER }"),
        (
            "{name: *SUPPLIER* location: BI nodeType: Dimension }",
            "{ location: BI nodeType: Dimension name: *SUPPLIER* }",
        ),
        ('{ name: "ORDERS", location: "SRC" }', "{ location: SRC name: ORDERS }"),
        ("{ ORDERS }+", "{ name: ORDERS }+"),
        ("+{*}+", "+{ * }+"),
        (
            "{a} || {b},{c} and {d}{e}",
            "{ name: a } OR { name: b } AND { name: c } AND { name: d } AND { name: e }",
        ),
        ("{ NODETYPE: view }", "{ nodeType: view }"),
        ("{ A || B }", "{ name: A OR name: B }"),
        ("{ * or location: x }+", "{ * OR location: x }+"),
        # quotes only where the value would not read back without them
        ("{ 'x' }", "{ name: x }"),
        ('{ "DIM CUSTOMER" }', '{ name: "DIM CUSTOMER" }'),
        ("{ 'say \"hi\"' }", "{ name: 'say \"hi\"' }"),
        ('{ "it\'s" }', '{ name: "it\'s" }'),
        ("{ 'Or' }", '{ name: "Or" }'),
        ("{ name: '' }", '{ name: "" }'),
        ("{ name: 'a:b' }", '{ name: "a:b" }'),
        ("{ name: 'a,b' }", '{ name: "a,b" }'),
        ("{ name: 'a|b' }", '{ name: "a|b" }'),
        ("{ name: '{x}' }", '{ name: "{x}" }'),
        ("{ name: '+x?*' }", "{ name: +x?* }"),
        ("{ '*' }", "{ name: * }"),
    ],
)
def test_canonical_text(text: str, expected: str) -> None:
    assert canonical_text(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("{name:A}", "  {  name :  A  }  "),
        ("{ location: L name: A }+ OR {B}", "{name:A,location:L}+\n  or\t{ B }"),
        ("+{ a }, { b }", "+{a} AND {b}"),
    ],
)
def test_whitespace_and_spelling_edits_do_not_change_the_canonical_text(
    one: str, other: str
) -> None:
    assert canonical_text(one) == canonical_text(other)


def test_a_different_selector_has_a_different_canonical_text() -> None:
    assert canonical_text("{ a } OR { b }") != canonical_text("{ b } OR { a }")
    assert canonical_text('{ name: "a b" }') != canonical_text('{ name: "a  b" }')


def test_canonical_text_rejects_malformed_text() -> None:
    with pytest.raises(SelectorError):
        canonical_text("{ a } OR")


# ---------------------------------------------------------------------------- properties

VALUES = st.one_of(
    st.text(alphabet="aZ_ *?{}:,|\"'+.\t", max_size=6),
    st.sampled_from(["", "*", "or", "AND", "name", " x ", "a||b", "İ"]),
    st.text(max_size=4),
).filter(lambda value: not ('"' in value and "'" in value))
CONDITIONS = st.builds(Condition, st.sampled_from(Attribute), VALUES)
BODIES = st.lists(CONDITIONS, max_size=3).map(tuple)
TERMS = st.builds(Term, BODIES, st.booleans(), st.booleans())
BRACE_ORS = st.builds(
    BraceOr, st.lists(BODIES, min_size=2, max_size=3).map(tuple), st.booleans(), st.booleans()
)
CONJUNCTIONS = st.builds(
    Conjunction, st.lists(st.one_of(TERMS, TERMS, BRACE_ORS), min_size=1, max_size=3).map(tuple)
)
SELECTORS = st.builds(Selector, st.lists(CONJUNCTIONS, min_size=1, max_size=3).map(tuple))


@settings(max_examples=100, deadline=None)
@given(SELECTORS)
def test_canonical_text_parses_back_to_the_same_tree(tree: Selector) -> None:
    text = canonical(tree)
    assert parse_selector(text) == tree
    assert canonical_text(text) == text


def _reads_back_bare(value: str) -> bool:
    """The grammar's rule for a value written without quotes."""
    specials = set("{}:,|\"'")
    return (
        bool(value)
        and value.lower() not in ("or", "and")
        and not any(char.isspace() or char in specials for char in value)
    )


def _messy(data: st.DataObject, tree: Selector) -> str:
    """Any of the many texts that mean ``tree``: spacing, spellings, quoting, shorthand."""
    draw = data.draw

    def pick(*options: str) -> str:
        return draw(st.sampled_from(options))

    def space() -> str:
        return pick("", " ", "  ", "\t", "\n ")

    def gap() -> str:
        return pick(" ", "  ", "\t", "\n ")

    def value(text: str, *, shorthand: bool = False) -> str:
        bare_ok = _reads_back_bare(text) and not (shorthand and text == "*")  # '*': all nodes
        if bare_ok and draw(st.booleans()):
            return text
        mark = pick(*(mark for mark in "\"'" if mark not in text))
        return f"{mark}{text}{mark}"

    def attribute(attr: Attribute) -> str:
        return pick(attr.value, attr.value.lower(), attr.value.upper())

    def body(conditions: tuple[Condition, ...]) -> str:
        if not conditions:
            return "*"
        if (
            len(conditions) == 1
            and conditions[0].attribute is Attribute.NAME
            and draw(st.booleans())
        ):
            return value(conditions[0].pattern, shorthand=True)
        order = draw(st.permutations(conditions))
        parts = [f"{attribute(c.attribute)}{space()}:{space()}{value(c.pattern)}" for c in order]
        text = parts[0]
        for part in parts[1:]:
            text += pick(",", " ,", ", ") + space() + part if draw(st.booleans()) else gap() + part
        return text

    def atom(item: Term | BraceOr) -> str:
        sides = item.alternatives if isinstance(item, BraceOr) else (item.conditions,)
        inner = (gap() + pick("OR", "or", "||") + gap()).join(body(side) for side in sides)
        return (
            ("+" if item.upstream else "")
            + "{"
            + space()
            + inner
            + space()
            + "}"
            + ("+" if item.downstream else "")
        )

    def conjunction(terms: tuple[Term | BraceOr, ...]) -> str:
        text = atom(terms[0])
        for item in terms[1:]:
            text += pick(" AND ", " and ", ",", " , ", " ") + space() + atom(item)
        return text

    return (space() + pick("OR", "||", "or") + space()).join(
        conjunction(c.terms) for c in tree.alternatives
    )


@settings(max_examples=75, deadline=None)
@given(st.data(), SELECTORS)
def test_every_way_of_writing_a_tree_parses_to_that_tree(
    data: st.DataObject, tree: Selector
) -> None:
    text = _messy(data, tree)
    assert parse_selector(text) == tree
    assert canonical_text(text) == canonical(tree)
