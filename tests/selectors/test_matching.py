"""Glob matching through the graph's value indexes agrees with a plain, slow reference."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.selectors import (
    Attribute,
    Condition,
    Conjunction,
    Node,
    NodeGraph,
    Selector,
    Term,
    select,
)

# fnmatch also knows [...] classes, so the reference is only asked about text without them.
NAMES = st.text(alphabet="abAB_ *?", max_size=6)
PATTERNS = st.text(alphabet="abAB_ *?", max_size=5)


def _selector(attribute: Attribute, pattern: str) -> Selector:
    return Selector((Conjunction((Term((Condition(attribute, pattern),)),)),))


@settings(max_examples=150, deadline=None)
@given(st.lists(NAMES, max_size=12), st.lists(PATTERNS, min_size=1, max_size=6))
def test_name_globs_match_like_fnmatch_ignoring_case(names: list[str], patterns: list[str]) -> None:
    graph = NodeGraph(Node(str(i), name, "L", "T") for i, name in enumerate(names))
    for pattern in patterns:
        expected = {
            str(i) for i, name in enumerate(names) if fnmatchcase(name.lower(), pattern.lower())
        }
        assert select(_selector(Attribute.NAME, pattern), graph) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(NAMES, max_size=3), max_size=8), PATTERNS)
def test_a_subgraph_glob_matches_nodes_with_any_matching_subgraph(
    subgraphs: list[list[str]], pattern: str
) -> None:
    graph = NodeGraph(
        Node(str(i), "N", "L", "T", subgraphs=tuple(names)) for i, names in enumerate(subgraphs)
    )
    expected = {
        str(i)
        for i, names in enumerate(subgraphs)
        if any(fnmatchcase(name.lower(), pattern.lower()) for name in names)
    }
    assert select(_selector(Attribute.SUBGRAPH, pattern), graph) == expected
