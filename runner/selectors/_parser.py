"""Reading selector text into a ``Selector`` tree: the grammar lives here, and only here.

Grammar (EBNF; ``ws`` is any run of whitespace, possibly empty)::

    selector     = ws , disjunction , ws ;
    disjunction  = conjunction , { ws , or-op , ws , conjunction } ;
    conjunction  = lineage-term , { ws , [ and-op , ws ] , lineage-term } ;
    lineage-term = [ "+" ] , term , [ "+" ] ;
    term         = "{" , ws , body , { ws , or-op , ws , body } , ws , "}" ;
    body         = "*" | value | condition , { ws , [ "," , ws ] , condition } ;
    condition    = attribute , ws , ":" , ws , value ;
    attribute    = "location" | "subgraph" | "nodeType" | "name" | "nodeID" ;
    value        = bare | '"' , { char - '"' } , '"' | "'" , { char - "'" } , "'" ;
    bare         = bare-char , { bare-char } ;
    or-op        = "||" | "OR" ;
    and-op       = "," | "AND" ;

Rules the EBNF does not show:

* Precedence: AND (``AND``, ``,``, or terms simply written one after the other) binds
  tighter than OR (``OR``, ``||``); there are no parentheses. ``{a} {b} OR {c}`` is
  ``(a AND b) OR c``.
* ``OR`` and ``AND`` are keywords in any letter case and are never values: quote a value
  spelled like one (``name: "or"``). Attribute names are case-insensitive too
  (``nodetype`` is ``nodeType``); the linter points out spellings other than Coalesce's.
* ``bare-char`` is any character except whitespace and ``{ } : , | " '`` (outside braces
  ``+`` also stops a word). A quoted value holds any character but its own quote mark,
  spaces included; there are no escapes.
* ``{ VALUE }`` is shorthand for ``{ name: VALUE }``; ``{ * }`` is every node. A
  shorthand stands alone in its braces.
* A ``+`` touches the brace it extends: ``+{...}`` adds upstream nodes, ``{...}+``
  downstream nodes, ``+{...}+`` both. A ``+`` touching two braces (``{a}+{b}``) is
  ambiguous and an error.
* More than one ``body`` in one brace pair (``{ A || B }``) is an in-brace OR, which
  Coalesce accepts and resolves to no node at all: it parses into ``BraceOr`` and the
  linter warns about it.

Every column reported is 1-based; a problem at the end of the text points one past its
last character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from runner.errors import did_you_mean
from runner.selectors._errors import SelectorError
from runner.selectors._tree import (
    ATTRIBUTE_ORDER,
    Atom,
    Attribute,
    BraceOr,
    Condition,
    Conjunction,
    Selector,
    Term,
)

__all__ = ["KNOWN_ATTRIBUTES", "attribute_named", "needs_quotes", "parse"]

_WHITESPACE = re.compile(r"\s*")
_WORD_INSIDE = re.compile(r"""[^\s{}:,|"']+""")
_WORD_OUTSIDE = re.compile(r"""[^\s{}:,|"'+]+""")
_NEEDS_QUOTES = re.compile(r"""[\s{}:,|"']""")
_KEYWORDS = {"or", "and"}

_ATTRIBUTES = {attribute.value.lower(): attribute for attribute in Attribute}
#: Spellings people reach for that difflib does not find close enough.
_ATTRIBUTE_HINTS = {"id": Attribute.NODE_ID, "type": Attribute.NODE_TYPE}
KNOWN_ATTRIBUTES = ", ".join(attribute.value for attribute in ATTRIBUTE_ORDER)


def attribute_named(spelling: str) -> Attribute | None:
    """The attribute written ``spelling``, in any letter case."""
    return _ATTRIBUTES.get(spelling.lower())


def needs_quotes(value: str) -> bool:
    """Whether ``value`` must be quoted to read back as one value."""
    return not value or value.lower() in _KEYWORDS or _NEEDS_QUOTES.search(value) is not None


def _end_of(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a match of ``pattern`` at ``pos`` ends (``pos`` when it does not match)."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


class _Kind(Enum):
    LBRACE = auto()
    RBRACE = auto()
    PLUS = auto()
    COLON = auto()
    COMMA = auto()
    OR = auto()
    AND = auto()
    WORD = auto()
    STRING = auto()
    END = auto()


_OPERATORS = (_Kind.OR, _Kind.AND, _Kind.COMMA)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str  # as written, quotes included
    value: str  # a STRING without its quotes; otherwise the text
    column: int
    spaced: bool  # whitespace right before it


class _Lexer:
    """Turns text into tokens on demand, so errors surface in reading order."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._open_brace = 0  # column of the "{" not yet closed, 0 when outside braces

    def _error(self, message: str, index: int) -> SelectorError:
        return SelectorError(message, column=index + 1, text=self._text)

    def _unclosed(self) -> SelectorError:
        return self._error("unclosed '{': add '}' to end this term", self._open_brace - 1)

    def next(self) -> _Token:
        text = self._text
        start = self._pos
        pos = _end_of(_WHITESPACE, text, start)
        spaced = pos > start
        if pos == len(text):
            self._pos = pos
            if self._open_brace:
                raise self._unclosed()
            return _Token(_Kind.END, "", "", pos + 1, spaced)
        char = text[pos]
        kind, end, value = self._read(char, pos)
        self._pos = end
        raw = text[pos:end]
        return _Token(kind, raw, raw if value is None else value, pos + 1, spaced)

    def _read(self, char: str, pos: int) -> tuple[_Kind, int, str | None]:
        """The kind of the token at ``pos``, where it ends, and its value if not its text."""
        if char == "{":
            if self._open_brace:
                raise self._unclosed()
            self._open_brace = pos + 1
            return _Kind.LBRACE, pos + 1, None
        if char == "}":
            if not self._open_brace:
                raise self._error("unexpected '}': no '{' is open here", pos)
            self._open_brace = 0
            return _Kind.RBRACE, pos + 1, None
        if char == "+" and not self._open_brace:
            return _Kind.PLUS, pos + 1, None
        if char in ":,":
            return (_Kind.COLON if char == ":" else _Kind.COMMA), pos + 1, None
        if char == "|":
            if self._text.startswith("||", pos):
                return _Kind.OR, pos + 2, None
            raise self._error("a single '|' is not an operator: write '||' or OR", pos)
        if char in "\"'":
            close = self._text.find(char, pos + 1)
            if close < 0:
                raise self._error(f"unterminated quote: add a closing {char} to end the value", pos)
            return _Kind.STRING, close + 1, self._text[pos + 1 : close]
        word = _WORD_INSIDE if self._open_brace else _WORD_OUTSIDE
        end = _end_of(word, self._text, pos)
        keyword = self._text[pos:end].lower()
        if keyword == "or":
            return _Kind.OR, end, None
        if keyword == "and":
            return _Kind.AND, end, None
        return _Kind.WORD, end, None


def parse(text: str) -> Selector:
    """The tree of ``text``; raises ``SelectorError`` for anything malformed."""
    return _Parser(text).selector()


class _Parser:
    """Recursive descent over the grammar above, one token of lookahead (two for ':')."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lexer = _Lexer(text)
        self._peeked: _Token | None = None
        self._tok = self._lexer.next()

    # ------------------------------------------------------------------ plumbing

    def _advance(self) -> _Token:
        current = self._tok
        self._tok = self._peeked or self._lexer.next()
        self._peeked = None
        return current

    def _at(self, *kinds: _Kind) -> bool:
        # A method, not an attribute test, so type checkers do not assume the current
        # token survives a call to _advance().
        return self._tok.kind in kinds

    def _peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._lexer.next()
        return self._peeked

    def _error(self, message: str, column: int) -> SelectorError:
        return SelectorError(message, column=column, text=self._text)

    def _leading_operator(self, op: _Token) -> SelectorError:
        return self._error(
            f"'{op.text}' has nothing before it: put a term on its left, or remove it", op.column
        )

    def _check_operand_after(self, op: _Token, closing: _Kind) -> None:
        """After an operator: reject the end of the text (or term) and a second operator."""
        nxt = self._tok
        if nxt.kind is closing:
            raise self._error(
                f"'{op.text}' has nothing after it: put a term on its right, or remove it",
                op.column,
            )
        if nxt.kind in _OPERATORS:
            raise self._error(
                f"'{nxt.text}' right after '{op.text}': two operators in a row; remove one",
                nxt.column,
            )

    # ------------------------------------------------------------------ outside braces

    def selector(self) -> Selector:
        if self._at(_Kind.END):
            raise self._error(
                "empty selector: write a term such as '{ name: ORDERS }', or leave it out",
                self._tok.column,
            )
        alternatives = [self._conjunction()]
        while self._at(_Kind.OR):
            op = self._advance()
            self._check_operand_after(op, _Kind.END)
            alternatives.append(self._conjunction())
        if not self._at(_Kind.END):
            raise self._unexpected_outside(self._tok)
        return Selector(tuple(alternatives), text=self._text)

    def _conjunction(self) -> Conjunction:
        terms = [self._lineage_term()]
        while True:
            tok = self._tok
            if tok.kind in (_Kind.AND, _Kind.COMMA):
                self._advance()
                self._check_operand_after(tok, _Kind.END)
            elif tok.kind not in (_Kind.LBRACE, _Kind.PLUS):
                return Conjunction(tuple(terms))
            terms.append(self._lineage_term())

    def _lineage_term(self) -> Atom:
        start = self._tok
        if start.kind in _OPERATORS:
            raise self._leading_operator(start)
        upstream = start.kind is _Kind.PLUS
        if upstream:
            self._advance()
            if not self._at(_Kind.LBRACE) or self._tok.spaced:
                raise self._loose_plus(start)
        elif start.kind is not _Kind.LBRACE:
            raise self._unexpected_outside(start)
        return self._term(upstream, start.column)

    def _downstream_plus(self) -> bool:
        """Consume a '+' touching the '}' just read, if there is one."""
        plus = self._tok
        if plus.kind is not _Kind.PLUS or plus.spaced:
            return False
        self._advance()
        if self._at(_Kind.LBRACE) and not self._tok.spaced:
            raise self._error(
                "ambiguous '+' between two terms: write '{ ... }+ { ... }' to add the "
                "first term's downstream nodes, or '{ ... } +{ ... }' to add the second "
                "term's upstream nodes",
                plus.column,
            )
        return True

    def _loose_plus(self, plus: _Token) -> SelectorError:
        return self._error(
            "'+' must touch the brace of its term: '+{ ... }' adds upstream nodes, "
            "'{ ... }+' adds downstream nodes",
            plus.column,
        )

    def _unexpected_outside(self, tok: _Token) -> SelectorError:
        if tok.kind is _Kind.END:
            return self._error("the selector ends where a term was expected", tok.column)
        if tok.kind is _Kind.PLUS:
            return self._loose_plus(tok)
        if tok.kind is _Kind.WORD:
            return self._error(
                f"unexpected '{tok.text}': terms go inside braces, as in '{{ {tok.text} }}'",
                tok.column,
            )
        return self._error(
            f"unexpected '{tok.text}' outside braces: write terms such as '{{ name: ORDERS }}'",
            tok.column,
        )

    # ------------------------------------------------------------------ inside braces

    def _term(self, upstream: bool, column: int) -> Atom:
        opening = self._advance()
        if self._at(_Kind.RBRACE):
            raise self._error(
                "empty term '{ }': put a name, attributes or '*' (all nodes) between the braces",
                opening.column,
            )
        sides = [self._body()]
        operator_column = 0
        while self._at(_Kind.OR):
            op = self._advance()
            operator_column = operator_column or op.column
            self._check_operand_after(op, _Kind.RBRACE)
            sides.append(self._body())
        if not self._at(_Kind.RBRACE):
            raise self._unexpected_in_term(self._tok)
        self._advance()
        downstream = self._downstream_plus()
        if len(sides) == 1:
            return Term(sides[0], upstream, downstream, column)
        return BraceOr(tuple(sides), upstream, downstream, column, operator_column)

    def _body(self) -> tuple[Condition, ...]:
        tok = self._tok
        if tok.kind in _OPERATORS:
            raise self._leading_operator(tok)
        if tok.kind in (_Kind.WORD, _Kind.STRING) and self._peek().kind is _Kind.COLON:
            return self._conditions()
        if tok.kind not in (_Kind.WORD, _Kind.STRING):
            raise self._unexpected_in_term(tok)
        self._advance()
        if not self._at(_Kind.RBRACE, _Kind.OR):
            raise self._after_shorthand(tok, self._tok)
        if tok.kind is _Kind.WORD and tok.text == "*":
            return ()
        return (Condition(Attribute.NAME, tok.value, tok.column),)

    def _after_shorthand(self, shorthand: _Token, tok: _Token) -> SelectorError:
        if tok.kind is _Kind.AND:
            return self._and_in_term(tok)
        if shorthand.kind is _Kind.WORD and attribute_named(shorthand.text):
            return self._missing_colon(shorthand, tok.column)
        return self._error(
            f"unexpected '{tok.text}' after '{shorthand.text}': a bare name stands alone in its "
            "braces; quote a name that has spaces, or write 'attribute: value' pairs",
            tok.column,
        )

    def _conditions(self) -> tuple[Condition, ...]:
        conditions = [self._condition()]
        while True:
            tok = self._tok
            if tok.kind is _Kind.COMMA:
                self._advance()
                self._check_operand_after(tok, _Kind.RBRACE)
            elif tok.kind is _Kind.AND:
                raise self._and_in_term(tok)
            elif tok.kind is _Kind.COLON:
                raise self._error(
                    "unexpected ':' after a value: quote values that contain ':'", tok.column
                )
            elif tok.kind not in (_Kind.WORD, _Kind.STRING):
                return tuple(conditions)
            conditions.append(self._condition())

    def _condition(self) -> Condition:
        name = self._tok
        if name.kind is _Kind.STRING and self._peek().kind is _Kind.COLON:
            raise self._error(
                f"attribute names are written without quotes: {name.value}: VALUE", name.column
            )
        if name.kind is not _Kind.WORD:
            raise self._unexpected_in_term(name)
        if self._peek().kind is not _Kind.COLON:
            raise self._missing_colon(name, self._peek().column)
        attribute = self._attribute(name)
        self._advance()
        self._advance()
        value = self._tok
        if value.kind in (_Kind.WORD, _Kind.STRING):
            self._advance()
            return Condition(attribute, value.value, name.column, name.text)
        if value.kind in (_Kind.OR, _Kind.AND):
            raise self._error(
                f"'{value.text}' is an operator, not a value: quote it "
                f'({name.text}: "{value.text}") to match that text',
                value.column,
            )
        raise self._error(
            f"missing value after '{name.text}:': write {name.text}: VALUE "
            "(quoted if it has spaces)",
            value.column,
        )

    def _missing_colon(self, name: _Token, column: int) -> SelectorError:
        return self._error(
            f"expected ':' after '{name.text}': write attributes as 'attribute: value', "
            "and quote values that have spaces",
            column,
        )

    def _attribute(self, name: _Token) -> Attribute:
        attribute = attribute_named(name.text)
        if attribute is not None:
            return attribute
        lowered = name.text.lower()
        hint = _ATTRIBUTE_HINTS.get(lowered)
        if hint is None:
            meant = did_you_mean(lowered, _ATTRIBUTES)
            hint = _ATTRIBUTES[meant] if meant is not None else None
        if hint is not None:
            message = f"unknown attribute '{name.text}': did you mean '{hint.value}'?"
        else:
            message = f"unknown attribute '{name.text}': use one of {KNOWN_ATTRIBUTES}"
        raise self._error(message, name.column)

    def _and_in_term(self, tok: _Token) -> SelectorError:
        return self._error(
            f"'{tok.text}' inside braces: separate attributes with a space or ',', "
            f"or join whole terms: '{{ ... }} {tok.text} {{ ... }}'",
            tok.column,
        )

    def _unexpected_in_term(self, tok: _Token) -> SelectorError:
        if tok.kind is _Kind.COLON:
            return self._error(
                "unexpected ':': an attribute name goes before it, as in 'name: ORDERS'",
                tok.column,
            )
        return self._error(
            f"unexpected '{tok.text}': expected an attribute such as 'name: ORDERS' or '}}'",
            tok.column,
        )
