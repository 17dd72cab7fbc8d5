"""Ways an outside review found to learn secrets from what the program shows, each kept
closed: no oracle through text the spec author chose, no secret split across fields,
re-wrapped, re-cased, spaced out or hidden behind invisible characters, no terminal
control from foreign text, and no secret file read from the filesystem's root."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.coalesce.errors import api_error_from_response
from runner.secrets import KNOWN_SECRETS, Secret, foreign_text
from runner.spec.templates import secret_roots

TOKEN = "tok_9f8e7d6c5b4a3210ZZ"
KEY_BODY = "".join(
    f"MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAK3hdGvqAnoR{i:04d}" for i in range(8)
)
KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join(KEY_BODY[i : i + 64] for i in range(0, len(KEY_BODY), 64))
    + "\n-----END PRIVATE KEY-----\n"
)


@pytest.fixture(autouse=True)
def _known() -> Iterator[None]:
    KNOWN_SECRETS.clear()
    yield
    KNOWN_SECRETS.clear()


def _error(secret: str, path: str, body: object) -> str:
    KNOWN_SECRETS.clear()
    Secret(secret)
    response = httpx.Response(404, json=body)
    return str(api_error_from_response(response, method="GET", path=path, token_source="t"))


def test_text_the_spec_author_chose_is_no_oracle() -> None:
    """An environment id equal to the secret must not make the error read differently
    from a wrong guess: the author would learn the PIN from it."""
    body = {"error": {"errorString": "Environment not found"}}
    right = _error("4821", "/api/v1/environments/4821", body)
    wrong = _error("4821", "/api/v1/environments/4822", body)
    assert right.replace("4821", "N") == wrong.replace("4822", "N")
    assert "withheld" not in right


@pytest.mark.parametrize(
    "echo",
    [
        TOKEN.upper(),
        TOKEN.lower(),
        "\u200b".join(TOKEN),
        "\u00ad".join(TOKEN),
        "\x1b[0m".join(TOKEN),
        " ".join(TOKEN),
        "-".join(TOKEN),
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in TOKEN),  # fullwidth
        ("token: " + TOKEN).encode("utf-16-le").decode("latin-1"),
        TOKEN[::-1],
        codecs.encode(TOKEN, "rot13"),
    ],
    ids=[
        "upper",
        "lower",
        "zero-width",
        "soft-hyphen",
        "ansi",
        "spaced",
        "dashed",
        "fullwidth",
        "utf-16",
        "reversed",
        "rot13",
    ],
)
def test_a_secret_disguised_for_the_eye_is_withheld(echo: str) -> None:
    Secret(TOKEN)
    assert "withheld" in foreign_text(f"bad token {echo}", context="Coalesce's error text")


def test_a_secret_split_between_error_string_and_detail_is_withheld() -> None:
    body = {"error": {"errorString": f"bad token {TOKEN[:11]}", "errorDetail": TOKEN[11:]}}
    text = _error(TOKEN, "/scheduler/startRun", body)
    assert TOKEN[:11] not in text and TOKEN[11:] not in text


@pytest.mark.parametrize("width", [20, 60, 76])
def test_a_private_key_rewrapped_by_a_server_is_withheld(width: int) -> None:
    Secret(KEY)
    rewrapped = "\n".join(KEY_BODY[i : i + width] for i in range(0, 480, width))
    assert "withheld" in foreign_text(rewrapped, context="Coalesce's error text")


def test_foreign_text_cannot_drive_the_terminal() -> None:
    shown = foreign_text("ok\x1b[2J\x1b]0;title\x07\u202eevil", context="x")
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown


def test_the_filesystem_root_is_never_a_folder_secret_files_may_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", "/")
    roots = secret_roots(tmp_path, {"RUNNER_SECRET_DIRS": "/"})
    assert Path("/") not in roots and tmp_path.resolve() in roots
