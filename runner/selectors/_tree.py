"""The syntax tree of a selector: frozen dataclasses, compared by meaning.

A selector is always a union of intersections of terms (there are no parentheses in
Coalesce's grammar), so the tree has exactly that shape and cannot express anything the
text cannot::

    Selector(alternatives=(Conjunction(terms=(Term | BraceOr, ...)), ...))

Positions (``column``) are 1-based indexes of a character in the selector text, the same
convention as ``SelectorError.column``. They are declared with ``compare=False``, so two
trees are equal when they mean the same thing however the text was spaced. A ``Term``
keeps its conditions sorted (see ``ATTRIBUTE_ORDER``), so the order in which attributes
were written does not count either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum


class Attribute(Enum):
    """A node attribute a condition can test; the value is Coalesce's own spelling."""

    LOCATION = "location"
    SUBGRAPH = "subgraph"
    NODE_TYPE = "nodeType"
    NAME = "name"
    NODE_ID = "nodeID"


#: The order of conditions inside a term, broad to narrow, as Coalesce's own examples
#: write them (``{ location: SAMPLE name: CUSTOMER }``).
ATTRIBUTE_ORDER: tuple[Attribute, ...] = tuple(Attribute)
_RANK = {attribute: rank for rank, attribute in enumerate(ATTRIBUTE_ORDER)}


@dataclass(frozen=True)
class Condition:
    """``attribute: pattern``: a case-insensitive glob (``*``, ``?``) on one attribute.

    ``spelling`` is the attribute name as written (``nodetype``); it only feeds the
    linter and does not take part in equality.
    """

    attribute: Attribute
    pattern: str
    column: int = field(default=0, compare=False)
    spelling: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # Values have no escape characters, so one value cannot hold both quote marks.
        if '"' in self.pattern and "'" in self.pattern:
            raise ValueError(f"a selector value cannot contain both quote marks: {self.pattern!r}")

    @property
    def sort_key(self) -> tuple[int, str]:
        return (_RANK[self.attribute], self.pattern)


def _sorted(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    return tuple(sorted(conditions, key=lambda condition: condition.sort_key))


@dataclass(frozen=True)
class Term:
    """One brace pair: the nodes matching every condition (none at all means ``{ * }``).

    ``upstream`` (``+{...}``) adds every node the matches depend on, directly or not;
    ``downstream`` (``{...}+``) adds every node that depends on them.
    """

    conditions: tuple[Condition, ...] = ()
    upstream: bool = False
    downstream: bool = False
    column: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", _sorted(self.conditions))


@dataclass(frozen=True)
class BraceOr:
    """``{ A || B }``: an OR written inside one brace pair.

    Coalesce accepts this text and silently matches no node with it, so it parses (the
    linter flags it) and resolves to nothing, as Coalesce does. Each alternative is the
    condition list of one side; an empty one is ``*``.
    """

    alternatives: tuple[tuple[Condition, ...], ...]
    upstream: bool = False
    downstream: bool = False
    column: int = field(default=0, compare=False)
    operator_column: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if len(self.alternatives) < 2:
            raise ValueError("an in-brace OR needs at least two alternatives")
        object.__setattr__(self, "alternatives", tuple(_sorted(side) for side in self.alternatives))


Atom = Term | BraceOr


@dataclass(frozen=True)
class Conjunction:
    """Terms joined by ``AND``, ``,`` or whitespace: the nodes every term selects."""

    terms: tuple[Atom, ...]

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("a conjunction needs at least one term")


@dataclass(frozen=True)
class Selector:
    """Conjunctions joined by ``OR`` or ``||``: the nodes any of them selects.

    ``text`` is the source the tree was parsed from ("" when built in code).
    """

    alternatives: tuple[Conjunction, ...]
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.alternatives:
            raise ValueError("a selector needs at least one alternative")

    def atoms(self) -> Iterator[Atom]:
        """Every brace term, in the order written."""
        for conjunction in self.alternatives:
            yield from conjunction.terms

    def attributes(self) -> frozenset[Attribute]:
        """Every node attribute the selector tests."""
        found: set[Attribute] = set()
        for atom in self.atoms():
            sides = atom.alternatives if isinstance(atom, BraceOr) else (atom.conditions,)
            found.update(condition.attribute for side in sides for condition in side)
        return frozenset(found)
