"""Text from outside (a server's error, a library's message) is withheld whole when it
holds a secret in any common encoding, and is otherwise shown cut to a bounded length."""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.secrets import FOREIGN_LIMIT, KNOWN_SECRETS, Secret, foreign_text, holds_secret


@pytest.fixture(autouse=True)
def _no_secrets_known() -> Iterator[None]:
    KNOWN_SECRETS.clear()
    yield
    KNOWN_SECRETS.clear()


def _json(value: str) -> str:
    return json.dumps(value)[1:-1]


def _b64_at(offset: int, alphabet: str = "std") -> Callable[[str], str]:
    def encode(value: str) -> str:
        data = b"ab"[:offset] + value.encode()
        out = base64.b64encode(data) if alphabet == "std" else base64.urlsafe_b64encode(data)
        return out.decode()

    return encode


def _wrapped(text: str, width: int = 8) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


#: The ways a server was seen (or can be expected) to repeat a credential it was sent.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "as-is": lambda s: s,
    "url": lambda s: urllib.parse.quote(s, safe=""),
    "url-bearer": lambda s: urllib.parse.quote(f"Bearer {s}"),
    "url-lower-hex": lambda s: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(s, safe="")
    ),
    "form": lambda s: urllib.parse.urlencode({"password": s, "user": "svc"}),
    "json": lambda s: _json(s),
    "json-raw": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json-slash": lambda s: _json(s).replace("/", "\\/"),
    "json-twice": lambda s: _json(json.dumps({"snowflakePassword": s})),
    "json-body-url": lambda s: urllib.parse.quote(json.dumps({"p": s})),
    "html-named": lambda s: html.escape(s),
    "html-decimal": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "html-hex": lambda s: "".join(f"&#x{ord(c):X};" for c in s),
    "u-escapes": lambda s: "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in s),
    "u-escapes-upper": lambda s: re.sub(
        r"\\u[0-9a-f]{4}", lambda m: "\\u" + m.group()[2:].upper(), _json(s)
    ),
    "byte-escapes": lambda s: "".join(f"\\x{b:02x}" for b in s.encode()),
    "hex": lambda s: s.encode().hex(),
    "hex-upper": lambda s: s.encode().hex().upper(),
    "hex-spaced": lambda s: " ".join(f"{b:02X}" for b in s.encode()),
    "base64-0": _b64_at(0),
    "base64-1": _b64_at(1),
    "base64-2": _b64_at(2),
    "base64url-1": _b64_at(1, "url"),
    "base64url-2": _b64_at(2, "url"),
    "basic-auth": lambda s: "Basic " + base64.b64encode(f"svc_user:{s}".encode()).decode(),
    "base64-mime": lambda s: _wrapped(base64.b64encode(("x" + s).encode()).decode()),
    "base64-utf16": lambda s: base64.b64encode(s.encode("utf-16-le")).decode(),
    "base64-utf16-bom": lambda s: base64.b64encode(s.encode("utf-16")).decode(),
    "hex-utf16": lambda s: s.encode("utf-16-be").hex(),
    "base32": lambda s: base64.b32encode(s.encode()).decode(),
    "base32-lower": lambda s: base64.b32encode(("xy" + s).encode()).decode().lower(),
    "octal-escapes": lambda s: "".join(f"\\{b:03o}" for b in s.encode()),
    "byte-list": lambda s: json.dumps(list(s.encode())),
    "byte-list-spaced": lambda s: " " + " ".join(str(b) for b in s.encode()) + " ",
    "nfc": lambda s: unicodedata.normalize("NFC", s),
    "nfd": lambda s: unicodedata.normalize("NFD", s),
    "nfd-json": lambda s: _json(unicodedata.normalize("NFD", s)),
}

#: Text around the echo, as servers write it (no escape characters of their own).
SURROUNDING = st.text(alphabet=st.sampled_from("abcXYZ019 :;,.=()[]{}\"'<>/-_\n"), max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=st.text(min_size=4, max_size=40).filter(lambda s: len(s.strip()) >= 4),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    before=SURROUNDING,
    after=SURROUNDING,
)
def test_a_secret_in_any_encoding_is_withheld_whole(
    secret: str, encoding: str, before: str, after: str
) -> None:
    KNOWN_SECRETS.clear()
    Secret(secret)
    echoed = f"{before}{ENCODINGS[encoding](secret)}{after}"
    shown = foreign_text(echoed, context="Coalesce's error text", status=400)
    assert shown == (
        "Coalesce's error text was withheld because it contained a credential (status 400)"
    )


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_each_encoding_of_a_canary_is_withheld(encoding: str) -> None:
    canary = 'CANARY-pässwörd/+=&"<tag> ünï 日本 \U0001f511'
    Secret(canary)
    echoed = f"error: request had {ENCODINGS[encoding](canary)} in it"
    assert holds_secret(echoed)
    assert "CANARY" not in foreign_text(echoed, context="it", fields=["runDetails.jobID"])


def test_overlapping_secrets_are_withheld_without_a_tail() -> None:
    Secret("abcdefgh1234")
    Secret("1234wxyz")
    shown = foreign_text("token abcdefgh1234wxyz refused", context="Coalesce's error text")
    assert "wxyz" not in shown and "abcd" not in shown


def test_text_without_a_secret_is_shown_on_one_line_and_cut() -> None:
    Secret("a-real-secret-value")
    text = "first line\n   second\tline " + "y" * 2000
    shown = foreign_text(text, context="it")
    assert shown.startswith("first line second line yyy")
    assert len(shown) == FOREIGN_LIMIT and shown.endswith("...")


def test_a_secret_across_the_cut_is_withheld_whole() -> None:
    Secret("CANARY-across-the-cut-0123456789")
    text = "x" * (FOREIGN_LIMIT - 10) + "CANARY-across-the-cut-0123456789"
    assert "CANARY" not in foreign_text(text, context="it")


@pytest.mark.parametrize("short", ["x", "1", "e", "ab", "  z  "])
def test_a_secret_too_short_to_look_for_withholds_every_foreign_text(short: str) -> None:
    Secret(short)
    shown = foreign_text("Coalesce is down for maintenance", context="Coalesce's error text")
    assert shown.startswith("Coalesce's error text was withheld because a secret shorter")


def test_the_sentence_does_not_depend_on_where_the_secret_is() -> None:
    """Nothing positional: the same sentence wherever (and however often) it appears."""
    Secret("4821")
    sequence = "0000100020003" + "4821" + "99990"
    first = foreign_text(sequence, context="it", status=400)
    second = foreign_text("4821" + sequence[::-1], context="it", status=400)
    assert first == second


def test_a_secret_pushed_far_by_whitespace_is_still_found() -> None:
    """What is shown has its whitespace collapsed: a megabyte of spaces before a secret
    must not carry it past the part of the text that is checked."""
    Secret("CANARY-after-the-spaces-7e1d")
    text = "error:" + " " * 1_000_000 + "CANARY-after-the-spaces-7e1d"
    assert "CANARY" not in foreign_text(text, context="it")


def test_a_long_secret_that_starts_just_before_the_cut_is_found_whole() -> None:
    key = "".join(f"{n:04x}" for n in range(5000))  # 20,000 characters, like a PEM body
    Secret(key)
    text = "x" * (FOREIGN_LIMIT - 20) + json.dumps(json.dumps(key))
    assert foreign_text(text, context="it") == "it was withheld because it contained a credential"


def test_a_huge_foreign_text_is_checked_only_as_far_as_it_can_be_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runner._secret_forms
    import runner.secrets

    Secret("CANARY-somewhere-else-2b8a")
    decoded: list[int] = []
    views_of = runner._secret_forms.views_of

    def counting(text: str) -> Iterator[str]:
        decoded.append(len(text))
        return views_of(text)

    monkeypatch.setattr(runner.secrets, "views_of", counting)
    blob = base64.b64encode(bytes(range(256)) * 20_000).decode()  # 6.8 MB of base64
    shown = foreign_text(blob, context="it")
    assert len(shown) == FOREIGN_LIMIT
    assert decoded and max(decoded) <= KNOWN_SECRETS.checked_chars(FOREIGN_LIMIT)


def _layered(depth: int) -> str:
    """A text every decoder has something to decode in, again and again."""
    piece = "%41+&#66;\\x43 SGVsbG8gd29ybGQ= 48656c6c6f20776f JBSWY3DPEB3W64TMMQ 72 101 108 108"
    text = piece
    for _ in range(depth):
        text = f"{text} {urllib.parse.quote(text)} {base64.b64encode(text.encode()).decode()}"
    return text


def test_a_text_that_decodes_beyond_what_is_looked_at_is_withheld() -> None:
    Secret("CANARY-nowhere-in-it-9d1e")
    ordinary = "SQL compilation error: invalid identifier 'R.RETURN_REASON_CODE' (0xdeadbeef)"
    assert foreign_text(ordinary, context="it") == ordinary
    # Past the decoding budget nothing can be cleared: withheld, not shown unchecked.
    assert foreign_text(_layered(3), context="it") == (
        "it was withheld because it contained a credential"
    )


@pytest.mark.parametrize("cut", ["last", "first", "both-ends"])
def test_most_of_a_secret_is_as_good_as_all_of_it(cut: str) -> None:
    token = "tok-7f3a9c2e41b8d605"
    Secret(token)
    part = {"last": token[:-1], "first": token[1:], "both-ends": token[2:-2]}[cut]
    assert holds_secret(f"bad token {part}...")
    assert not holds_secret("bad token tok-7f3a...")  # a quarter of it is not


def test_failed_nodes_from_coalesce_withhold_a_name_or_an_error_holding_a_secret() -> None:
    from runner.apply.results import failed_nodes
    from runner.coalesce import RunResult

    Secret("CANARY-node-secret-91c4")
    echoed = base64.b64encode(b"user:CANARY-node-secret-91c4").decode()
    results = [
        RunResult.model_validate(
            {
                "nodeID": "n1",
                "name": "CANARY-node-secret-91c4",
                "runState": "failed",
                "queryResults": [
                    {"success": False, "error": {"errorString": f"auth Basic {echoed}"}}
                ],
            }
        ),
        RunResult.model_validate({"nodeID": "n2", "name": "ORDERS", "runState": "failed"}),
    ]
    first, second = (node.as_dict() for node in failed_nodes(results))
    assert first == {
        "nodeID": "n1",
        "name": "(withheld: it contained a credential)",
        "error": "Coalesce's error text was withheld because it contained a credential",
        "status": "failed",
    }
    assert second == {"nodeID": "n2", "name": "ORDERS", "error": "node failed", "status": "failed"}
