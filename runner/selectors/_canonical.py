"""One text per meaning: the form selectors are compared and shown in.

The canonical form spells every term out in the documented core syntax: single spaces,
``{ attribute: value ... }`` with Coalesce's attribute spelling and ``ATTRIBUTE_ORDER``,
``{ * }`` for all nodes, ``OR`` and ``AND`` in capitals between terms, and a value quoted
(with ``"``, or ``'`` when it contains ``"``) only when it would not read back bare. The
shorthand ``{ NAME }`` becomes ``{ name: NAME }``. Term order is kept: it is what the
author wrote, and reordering it would make a plan show changes nobody made.

For every tree ``t``: ``parse(canonical(t)) == t``.
"""

from __future__ import annotations

from runner.selectors._parser import needs_quotes
from runner.selectors._tree import Atom, Condition, Selector, Term


def canonical(tree: Selector) -> str:
    """The canonical text of ``tree``."""
    return " OR ".join(
        " AND ".join(_atom(atom) for atom in conjunction.terms) for conjunction in tree.alternatives
    )


def _atom(atom: Atom) -> str:
    if isinstance(atom, Term):
        body = _body(atom.conditions)
    else:
        body = " OR ".join(_body(side) for side in atom.alternatives)
    return ("+" if atom.upstream else "") + "{ " + body + " }" + ("+" if atom.downstream else "")


def _body(conditions: tuple[Condition, ...]) -> str:
    if not conditions:
        return "*"
    return " ".join(f"{c.attribute.value}: {quote(c.pattern)}" for c in conditions)


def quote(value: str) -> str:
    """``value`` as it is written in a selector: bare when possible."""
    if not needs_quotes(value):
        return value
    mark = "'" if '"' in value else '"'
    return f"{mark}{value}{mark}"
