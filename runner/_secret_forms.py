"""How a secret may show up in text it was never meant to be in, and how to find it.

Two complementary ways, both only *detect* (nothing here edits text):

* each secret's **encoded forms** are computed once when it is read: JSON-escaped (also
  with ``\\/`` and twice), URL- and form-encoded, HTML-escaped, hex, and base64 and
  base64url at each of the three byte alignments (so a password inside
  ``Basic base64(user:password)`` is found too), of the value in NFC and NFD, as UTF-8
  and as UTF-16;
* a foreign text is **decoded** into views: percent- and form-decoded, HTML entities
  (named, decimal, hex) resolved, backslash escapes (``\\uXXXX``, ``\\xNN``, octal,
  ``\\/``...) undone, runs of base64/base64url/base32/hex and lists of byte values
  decoded, each view again a few times over (for text escaped twice), then in NFC and NFD
  and with whitespace runs collapsed. The plain forms of each secret are looked for in
  every view, and its skeleton (and any three quarters of it: a secret cut short) in
  each view's skeleton, also reversed and in rot13.

A text that decodes into more views than are looked at is treated as holding a secret:
the budget that bounds the time spent can never be what lets a secret through.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Secrets shorter than this (whitespace aside) cannot be found meaningfully in text.
MIN_DETECTABLE = 4
#: Lines of a multi-line secret (a PEM key) at least this long are looked for alone.
_MIN_LINE = 8
#: How many decoding rounds: a text JSON-escaped twice, then URL-encoded, needs three.
_DEPTH = 3
#: Views of one text at most: decoding never takes unbounded time. A text that would
#: need more is not shown at all (see :func:`views_of`).
_MAX_VIEWS = 96
#: The shortest part of a secret (as a skeleton) that counts as the secret.
_MIN_STRETCH = 6

_B64_RUN = re.compile(r"[A-Za-z0-9+/]{6,}")
_B64URL_RUN = re.compile(r"[A-Za-z0-9_-]{6,}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{8,}")
_B32_RUN = re.compile(r"[A-Z2-7]{7,}=*|[a-z2-7]{7,}=*")
_BYTE_LIST = re.compile(r"(?:[0-9]{1,3}\s*[,;]?\s*){4,}")
_HEX_SEPARATORS = re.compile(r"\s|:|-|\\x|0x|%", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_BYTE_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.DOTALL)
_OCTAL_ESCAPES = re.compile(r"(?:\\[0-3][0-7]{2})+")
_NUMERIC_ENTITY = re.compile(r"&#(?:([0-9]{1,8})|[xX]([0-9A-Fa-f]{1,6}));?")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


@dataclass(frozen=True)
class SecretForms:
    """The forms of one secret value that can be looked for in text."""

    detectable: bool
    plain: tuple[str, ...]  # looked for in every decoded view
    encoded: tuple[str, ...]  # looked for in the text as it is (and without whitespace)
    hexed: tuple[str, ...]  # lower case; looked for in the lower-cased text
    # The value (and each line of a multi-line one) reduced to its skeleton (see
    # :func:`skeleton`): looked for in the skeleton of every decoded view.
    skeletons: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: str) -> SecretForms:
        if len(value.strip()) < MIN_DETECTABLE:
            return cls(False, (), (), ())
        bases = _base_forms(value)
        plain = set(bases)
        collapsed = " ".join(value.split())
        if len(collapsed) >= MIN_DETECTABLE:
            plain.add(collapsed)
        if "\n" in value or "\r" in value:
            lines = (line.strip() for line in value.splitlines())
            plain.update(line for line in lines if len(line) >= _MIN_LINE)
        texts = set(bases) | {encoded for base in bases for encoded in _text_encodings(base)}
        data = {text.encode() for text in texts} | {
            base.encode(wide) for base in bases for wide in ("utf-16-le", "utf-16-be")
        }
        encoded = texts | {core for raw in data for core in _base64_cores(raw)}
        hexed = {raw.hex() for raw in data}
        return cls(
            True,
            tuple(sorted(plain, key=len, reverse=True)),
            tuple(sorted(encoded - plain, key=len)),
            tuple(sorted(hexed, key=len)),
            _skeletons(value),
        )

    def in_plain(self, view: str) -> bool:
        return any(form in view for form in self.plain)

    def in_skeleton(self, bones: str) -> bool:
        return any(form in bones for form in self.skeletons)

    def in_encoded(self, text: str) -> bool:
        squeezed = _WHITESPACE.sub("", text)
        if any(form in text or form in squeezed for form in self.encoded):
            return True
        lower = text.lower()
        bare = _HEX_SEPARATORS.sub("", lower)
        return any(form in lower or form in bare for form in self.hexed)


# Terminal escape sequences (CSI ... final byte, and OSC ... BEL/ST): drawn as nothing.
_TERMINAL_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
# Characters a server may put between a secret's characters without changing how it
# reads: separators and punctuation that carry no letter or digit.
_SEPARATORS = frozenset(" \t\r\n-_.:,;|/\\'\"`~+*=()[]{}<>")


def skeleton(text: str) -> str:
    """``text`` as a person would read it, reduced to its letters and digits: compatibility
    forms folded (fullwidth letters), case folded, and everything drawn as nothing or as a
    mere separator dropped (control and format characters such as NUL and zero-width
    spaces, combining marks, terminal escapes, whitespace, punctuation). A secret whose
    characters a server spaced out, re-wrapped, re-cased or interleaved with invisible
    characters still shows in the skeleton."""
    text = _TERMINAL_ESCAPES.sub("", text)
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(
        char
        for char in folded
        if char not in _SEPARATORS and unicodedata.category(char)[0] not in "CMZ"
    )


def _skeletons(value: str) -> tuple[str, ...]:
    forms = {skeleton(value)}
    if "\n" in value or "\r" in value:
        # A PEM key re-wrapped or cut by a server: each line, and the body without the
        # armour lines, stand on their own.
        lines = [line.strip() for line in value.splitlines()]
        forms.update(skeleton(line) for line in lines if len(line) >= _MIN_LINE)
        forms.add(skeleton("".join(line for line in lines if not line.startswith("-----"))))
    # A server may cut what it echoes: most of a secret is as good as all of it to
    # someone guessing the rest, so any stretch of three quarters of it counts.
    forms.update(_stretches(skeleton(value)))
    return tuple(sorted(f for f in forms if len(f) >= MIN_DETECTABLE))


def _stretches(bones: str) -> set[str]:
    width = max(_MIN_STRETCH, -(-3 * len(bones) // 4))
    if len(bones) <= width:
        return set()
    return {bones[start : start + width] for start in range(len(bones) - width + 1)}


def _base_forms(value: str) -> tuple[str, ...]:
    forms = {value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}
    return tuple(sorted(forms))


def _text_encodings(value: str) -> Iterator[str]:
    """The value as a careless server may repeat it in text."""
    ascii_json = json.dumps(value)[1:-1]
    raw_json = json.dumps(value, ensure_ascii=False)[1:-1]
    for escaped in (ascii_json, raw_json):
        yield escaped
        yield escaped.replace("/", "\\/")
        yield json.dumps(escaped)[1:-1]  # escaped twice
    yield repr(value)[1:-1]
    yield urllib.parse.quote(value, safe="")
    yield urllib.parse.quote(value)
    yield urllib.parse.quote_plus(value)
    yield urllib.parse.quote(ascii_json, safe="")  # a JSON body, URL-encoded
    yield html.escape(value)
    yield html.escape(value, quote=False)


def _base64_cores(data: bytes) -> Iterator[str]:
    """The part of base64(``data``) that is the same wherever ``data`` starts in the
    encoded bytes: one per alignment (0, 1 or 2 bytes before it in its group of 3),
    standard and URL-safe alphabets."""
    for before in range(3):
        encoded = base64.b64encode(b"\0" * before + data).decode().rstrip("=")
        start = (0, 2, 3)[before]  # characters that also hold bits of the bytes before
        end = len(encoded) - (1 if (before + len(data)) % 3 else 0)  # ... or after
        core = encoded[start:end]
        if len(core) >= MIN_DETECTABLE:
            yield core
            yield core.replace("+", "-").replace("/", "_")


# -- the views of a foreign text -----------------------------------------------------------


class TooManyViews(Exception):
    """A text decodes into more views than are looked at: it cannot be cleared."""


def views_of(text: str) -> Iterator[str]:
    """``text`` and every decoding of it, each in NFC and NFD and with whitespace collapsed.

    Raises :class:`TooManyViews` when the text decodes into more than ``_MAX_VIEWS``
    views, before yielding any: a text built to exhaust the budget must not hide a secret
    in the views that would go unchecked, so the caller withholds it."""
    seen = {text}
    frontier = [text]
    for _ in range(_DEPTH):
        found: list[str] = []
        for view in frontier:
            for decode in _DECODERS:
                decoded = decode(view)
                if decoded and decoded not in seen:
                    if len(seen) == _MAX_VIEWS:
                        raise TooManyViews
                    seen.add(decoded)
                    found.append(decoded)
        frontier = found
    for view in seen:
        yield view
        yield unicodedata.normalize("NFC", view)
        yield unicodedata.normalize("NFD", view)
        yield " ".join(view.split())


def _url_decoded(text: str) -> str | None:
    return urllib.parse.unquote(text, errors="replace") if "%" in text else None


def _form_decoded(text: str) -> str | None:
    return urllib.parse.unquote_plus(text, errors="replace") if "+" in text else None


def _html_decoded(text: str) -> str | None:
    if "&" not in text:
        return None
    # Numeric references by hand first: html.unescape drops control characters.
    return html.unescape(_NUMERIC_ENTITY.sub(_entity_char, text))


def _entity_char(match: re.Match[str]) -> str:
    decimal, hexadecimal = match.groups()
    number = int(decimal) if decimal else int(hexadecimal, 16)
    return chr(number) if number <= 0x10FFFF else "\ufffd"


def _backslash_decoded(text: str) -> str | None:
    """Backslash escapes undone: JSON's, Python's and JavaScript's."""
    if "\\" not in text:
        return None
    text = _BYTE_ESCAPES.sub(_utf8_of_byte_escapes, text)
    text = _OCTAL_ESCAPES.sub(_utf8_of_octal_escapes, text)
    text = _ESCAPE.sub(_unescaped, text)
    # JSON writes characters beyond the BMP as two \u escapes (a surrogate pair).
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _utf8_of_byte_escapes(match: re.Match[str]) -> str:
    data = bytes(int(h, 16) for h in match.group().split("\\x")[1:])
    return data.decode("utf-8", "replace")


def _utf8_of_octal_escapes(match: re.Match[str]) -> str:
    data = bytes(int(o, 8) for o in match.group().split("\\")[1:])
    return data.decode("utf-8", "replace")


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        number = int(code[1:], 16)
        return chr(number) if number <= 0x10FFFF else "\ufffd"
    return _SIMPLE_ESCAPES.get(code, code)


def _runs_decoded(
    pattern: re.Pattern[str], decode: Callable[[str], bytes | None], *, group: int = 4
) -> Callable[[str], str | None]:
    """A decoder of every run of ``pattern`` in a text, from each of the first ``group``
    characters of the run (the run may have picked up characters before the encoded
    text: a group is 4 characters in base64, 8 in base32)."""

    def decoded(text: str) -> str | None:
        squeezed = _WHITESPACE.sub("", text)
        runs = set(pattern.findall(text)) | set(pattern.findall(squeezed))
        parts = [
            data.decode("utf-8", "replace")
            for run in runs
            for start in range(group)
            if (data := decode(run[start:])) is not None
        ]
        return "\n".join(parts) or None

    return decoded


def _base64_bytes(run: str) -> bytes | None:
    run = run.replace("-", "+").replace("_", "/")
    if len(run) % 4 == 1:
        run = run[:-1]
    try:
        return base64.b64decode(run + "=" * (-len(run) % 4))
    except (binascii.Error, ValueError):
        return None


def _hex_bytes(run: str) -> bytes | None:
    run = run[: len(run) // 2 * 2]
    try:
        return bytes.fromhex(run) if run else None
    except ValueError:
        return None


def _base32_bytes(run: str) -> bytes | None:
    run = run.upper().rstrip("=")
    run = run[: len(run) // 8 * 8] if len(run) % 8 in (1, 3, 6) else run
    try:
        return base64.b32decode(run + "=" * (-len(run) % 8)) if run else None
    except (binascii.Error, ValueError):
        return None


def _byte_list_decoded(text: str) -> str | None:
    """Lists of byte values (``[104, 117, 110]``, ``104 117 110``) read as UTF-8."""
    parts = []
    for run in _BYTE_LIST.findall(text):
        numbers = (int(n) for n in re.findall(r"[0-9]+", run))
        data = bytes(n if n < 256 else 0xFF for n in numbers)  # 0xFF: never in UTF-8
        parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts) or None


_DECODERS: tuple[Callable[[str], str | None], ...] = (
    _url_decoded,
    _form_decoded,
    _html_decoded,
    _backslash_decoded,
    _runs_decoded(_B64_RUN, _base64_bytes),
    _runs_decoded(_B64URL_RUN, _base64_bytes),
    _runs_decoded(_HEX_RUN, _hex_bytes),
    _runs_decoded(_B32_RUN, _base32_bytes, group=8),
    _byte_list_decoded,
)
