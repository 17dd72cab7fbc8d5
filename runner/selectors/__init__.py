"""Coalesce node selectors: parse, lint, normalise, and resolve against a node graph.

Every part of the program that reads a selector (spec validation, plan, the simulator)
goes through this package, so they all read a selector the same way::

    tree = parse_selector('{ location: STAGING }+ OR { name: "DIM CUSTOMER" }')
    lint_selector(tree)         # [] - nothing suspicious
    canonical(tree)             # '{ location: STAGING }+ OR { name: "DIM CUSTOMER" }'
    resolve(tree, None, graph)  # node ids, in dependency order

The grammar and its decisions are in ``_parser``'s docstring; in short: ``OR``/``||`` is
a union, ``AND``/``,``/juxtaposition an intersection binding tighter than OR; keywords
and attribute names are case-insensitive; matching is case-insensitive with ``*`` and
``?``; ``{ X }`` means ``{ name: X }`` and ``{ * }`` every node; ``+{...}`` adds upstream
and ``{...}+`` downstream nodes; ``{ A || B }`` parses, resolves to nothing (as Coalesce
does) and draws a warning. Columns are 1-based everywhere.
"""

from __future__ import annotations

from functools import lru_cache

from runner.selectors._canonical import canonical
from runner.selectors._errors import GraphError, SelectorError, SelectorWarning
from runner.selectors._graph import Node, NodeGraph
from runner.selectors._lint import lint_selector
from runner.selectors._parser import parse as _parse
from runner.selectors._resolve import resolve, select
from runner.selectors._tree import (
    Attribute,
    BraceOr,
    Condition,
    Conjunction,
    Selector,
    Term,
)

__all__ = [
    "Attribute",
    "BraceOr",
    "Condition",
    "Conjunction",
    "GraphError",
    "Node",
    "NodeGraph",
    "Selector",
    "SelectorError",
    "SelectorWarning",
    "Term",
    "canonical",
    "canonical_text",
    "lint_selector",
    "parse_selector",
    "resolve",
    "select",
]


@lru_cache(maxsize=8192)
def parse_selector(text: str) -> Selector:
    """Parse ``text`` (see ``_parser``); raises ``SelectorError``. Trees are immutable, so
    one parse serves every spec, plan and simulator request that repeats a selector."""
    return _parse(text)


def canonical_text(text: str) -> str:
    """The canonical form of selector ``text``; raises ``SelectorError`` if it is malformed."""
    return canonical(parse_selector(text))
