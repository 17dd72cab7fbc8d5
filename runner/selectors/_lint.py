"""Warnings about selectors that parse but probably do not do what their author meant."""

from __future__ import annotations

from collections.abc import Iterator

from runner.selectors._canonical import canonical
from runner.selectors._errors import SelectorWarning
from runner.selectors._tree import BraceOr, Condition, Conjunction, Selector, Term


def lint_selector(tree: Selector) -> list[SelectorWarning]:
    """Every warning for ``tree``, in the order of the text."""
    warnings: list[SelectorWarning] = []
    for atom in tree.atoms():
        if isinstance(atom, BraceOr):
            warnings.append(_brace_or_warning(atom))
        warnings.extend(_spelling_warning(c) for c in _conditions(atom) if _misspelled(c))
    return sorted(warnings, key=lambda warning: warning.column)


def _brace_or_warning(atom: BraceOr) -> SelectorWarning:
    split = Selector(
        tuple(
            Conjunction((Term(side, atom.upstream, atom.downstream),)) for side in atom.alternatives
        )
    )
    return SelectorWarning(
        "an OR inside one pair of braces matches no node at all in Coalesce: "
        f"give each side its own braces: {canonical(split)}",
        atom.operator_column,
    )


def _conditions(atom: Term | BraceOr) -> Iterator[Condition]:
    if isinstance(atom, Term):
        yield from atom.conditions
    else:
        for side in atom.alternatives:
            yield from side


def _misspelled(condition: Condition) -> bool:
    # An empty spelling is the { NAME } shorthand, which names no attribute.
    return bool(condition.spelling) and condition.spelling != condition.attribute.value


def _spelling_warning(condition: Condition) -> SelectorWarning:
    value = condition.attribute.value
    return SelectorWarning(
        f"attribute '{condition.spelling}' is written '{value}' in Coalesce's documentation; "
        f"use '{value}' so that Coalesce reads it as this program does",
        condition.column,
    )
