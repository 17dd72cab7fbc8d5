"""No secret leaves any command, on any path: one matrix of commands x failure paths.

Every test builds the same workspace: two environments behind the embedded simulator
(``sim://``), one with Basic credentials and one with a KeyPair key and passphrase, all
read from canary secrets, and one earlier apply in the state (one run completed, one
failed, one still running, per environment). Then it puts Coalesce (or the program) in
one failure mode, runs one command, and looks for the canaries everywhere the command
could have put them: stdout, stderr, every file under the working folder (the state
database and its -wal/-shm files, plan files, reports, the CI step summary) and every log
record. It runs as in a GitHub Actions job (``GITHUB_ACTIONS=true``), so the workflow
annotations that validate and plan print are searched too.

A test also checks that its failure path was really taken (the exit code, and what the
command said about it), so that a path the program never reached cannot pass unseen.

Below the matrix: every command against a Coalesce that echoes each request in one of
many encodings (searched for in every encoding), short and common secrets that must
change no document, the oracle (a plan must not depend on a PIN it holds), and a
PostgreSQL state whose password (in the state URL, or in PGPASSWORD) is a canary, through
validate, plan, apply, status and state copy, searched for in every encoding.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
import logging
import os
import re
import socket
import traceback
import unicodedata
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.cli
import runner.coalesce.client as coalesce_client
import runner.output
import runner.runtime
import runner.sim
from runner.coalesce import CoalesceClient
from runner.secrets import KNOWN_SECRETS, MIN_DETECTABLE, TOO_SHORT, withheld
from runner.sim import SimApp, SimClock, create_app, parse_world
from runner.spec import SpecSet
from runner.state import open_state
from tests.conftest import CliResult

# -- the canaries ------------------------------------------------------------------------
#
# Each line of each secret carries a marker of letters and digits only: a leak of any
# piece of a secret, in any escaping (JSON, markdown, repr), still carries one.

TOKEN = "CANARYtokenA7c1e9"  # the token Coalesce (the simulator) accepts
WRONG_TOKEN = "CANARYwrongtokenB4d2"  # a stale token: refused, and a secret all the same
PASSWORD = (
    "CANARYpasswordC5f3 \"dq\" 'sq': {brace} [list] #hash \\back\\slash, & * ! | > %\t<tab\n"
    "CANARYpasswordD8a0 second  line: {\"json\": 'yaml'} # end \\"
)
PASSPHRASE = "CANARYpassphraseE2b6 \"x\": {y} #z \\w 'v'\nCANARYpassphraseF9c7 :{}"
# The simulator, like Snowflake, accepts only PEM text (base64 and header lines) as a key:
# the YAML/JSON special characters and newlines of the other secrets are in the passphrase
# and the password; the key has its newlines and a header line with ':' and ','.
KEY = (
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED CANARYkeyG3e8\n"
    "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQICANARYkeyH6f1AgIIADAMBggqhkiG9w0C\n"
    "CANARYkeyJ0a4bodyline+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n"
)
# The state's PostgreSQL password (in the state URL, or in PGPASSWORD), with characters
# a URL must escape, and a wrong one (a secret all the same: it is in the URL given).
PG_PASSWORD = "CANARYpgpassK7m2 'q' \"dq\" {b} #h %p @a :c /s ?q &a +p"
PG_WRONG_PASSWORD = "CANARYpgwrongM4p9 @:/%"
SECRETS = (TOKEN, WRONG_TOKEN, PASSWORD, PASSPHRASE, KEY, PG_PASSWORD, PG_WRONG_PASSWORD)
MARKERS = (
    "CANARYpgpassK7m2",
    "CANARYpgwrongM4p9",
    "CANARYtokenA7c1e9",
    "CANARYwrongtokenB4d2",
    "CANARYpasswordC5f3",
    "CANARYpasswordD8a0",
    "CANARYpassphraseE2b6",
    "CANARYpassphraseF9c7",
    "CANARYkeyG3e8",
    "CANARYkeyH6f1",
    "CANARYkeyJ0a4",
)


def _forms(value: str) -> set[str]:
    """A secret as it would show up in text: as is, JSON-escaped, repr-escaped, and
    escaped for a URL (as a password in the state URL is)."""
    return {
        value,
        json.dumps(value)[1:-1],
        repr(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
    }


LEAK_FORMS = sorted({f for s in SECRETS for f in _forms(s)} | set(MARKERS), key=len)


def leaks_in(text: str) -> list[str]:
    """The markers (or whole secrets, in any form) found in ``text``."""
    return [form for form in LEAK_FORMS if form in text]


# -- the world and the specs -------------------------------------------------------------

BROKEN_ERROR = "SQL compilation error: invalid identifier 'R.RETURN_REASON_CODE'"

#: QUICK completes the moment it is created, BROKEN fails at once, SLOW runs for days.
WORLD: dict[str, Any] = {
    "version": 1,
    "seed": 0,
    "tokens": [TOKEN],
    "projects": [
        {
            "id": "1",
            "name": "Canaries",
            "nodes": [
                {"name": "QUICK_A", "location": "QUICK"},
                {"name": "QUICK_B", "location": "QUICK", "dependsOn": ["QUICK_A"]},
                {"name": "BROKEN", "location": "BROKEN"},
                {"name": "SLOW_A", "location": "SLOW"},
            ],
        }
    ],
    "environments": [
        {"id": "5", "name": "basic", "project": "1"},
        {"id": "6", "name": "keypair", "project": "1"},
    ],
    "behavior": {
        "startDelay": 0,
        "nodeSeconds": 0,
        "durations": [{"location": "SLOW", "seconds": 1_000_000}],
        "failures": [{"name": "BROKEN", "error": BROKEN_ERROR}],
    },
}

RUNS = """\
batches:
  - name: first
    onFailure: continue
    runs:
      - name: good
        includeNodesSelector: "{ location: QUICK }"
        parameters: {load_date: "2026-01-05"}
      - name: bad
        includeNodesSelector: "{ location: BROKEN }"
  - name: second
    runs:
      - name: slow
        includeNodesSelector: "{ location: SLOW }"
"""
BASIC_SPEC = (
    'version: 1\nenvironmentID: "5"\nname: basic\ncoalesce:\n  url: "sim://"\n'
    "userCredentials:\n  snowflakeAuthType: Basic\n  snowflakeUsername: SVC_BASIC\n"
    "  snowflakePassword: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"\n" + RUNS
)
KEYPAIR_SPEC = (
    'version: 1\nenvironmentID: "6"\nname: keypair\ncoalesce:\n  url: "sim://"\n'
    "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: SVC_KEYPAIR\n"
    "  snowflakeKeyPairKey: \"{{ secret_file(var('key_file')) }}\"\n"
    "  snowflakeKeyPairPass: \"{{ secret('SNOWFLAKE_KEY_PASS') }}\"\n" + RUNS
)

# -- the commands and the failure paths ---------------------------------------------------

PLAN_FILE = "plan.json"
FAST = ("--poll-interval", "0.05")
COMMANDS: dict[str, tuple[str, ...]] = {
    "validate": ("validate",),
    "plan-text": ("plan",),
    "plan-json": ("plan", "--format", "json"),
    "plan-markdown": ("plan", "--format", "markdown"),
    "plan-out": ("plan", "--out", "plans/next.json"),
    "apply": (
        "apply",
        "--auto-approve",
        "--format",
        "json",
        "--report",
        "reports/apply.md",
        "--no-wait",
        # The earlier apply left a run going: its twin here is skipped, not waited for,
        # and the message that says so is checked for canaries like everything else.
        "--if-running",
        "skip",
        *FAST,
    ),
    "status": ("status", "--refresh"),
    "rerun-failed": ("rerun", "--failed", "--auto-approve", *FAST),
    "cancel-all": ("cancel", "--all"),
}
#: What each command's requests are, for the faults that hit them: the reads of a
#: command that only reads, the writes (which carry the credentials) of the others.
TARGETS = {
    "plan-text": "GET",
    "plan-json": "GET",
    "plan-markdown": "GET",
    "plan-out": "GET",
    "apply": "POST",
    "status": "GET",
    "rerun-failed": "POST",
    "cancel-all": "POST",
}
#: The core function a crash is injected into, per command: one the command calls once
#: every secret has been read.
CRASH_POINTS: dict[str, tuple[Any, str]] = {
    "validate": (SpecSet, "runs"),
    "plan-text": (CoalesceClient, "get_environment"),
    "plan-json": (CoalesceClient, "get_environment"),
    "plan-markdown": (CoalesceClient, "get_environment"),
    "plan-out": (CoalesceClient, "get_environment"),
    "apply": (CoalesceClient, "fire"),
    "status": (CoalesceClient, "run_status"),
    "rerun-failed": (CoalesceClient, "fire"),
    "cancel-all": (CoalesceClient, "cancel_run"),
}

NETWORK = ("401", "400-echo", "400-html", "500-echo", "timeout")
PATHS_OF: dict[str, tuple[str, ...]] = {
    "validate": ("ok", "crash"),  # validate reads no network and no state
    "plan-text": ("ok", *NETWORK, "crash"),
    "plan-json": ("ok", *NETWORK, "crash"),
    "plan-markdown": ("ok", *NETWORK, "crash"),
    "plan-out": ("ok", *NETWORK, "crash"),
    "apply": ("ok", *NETWORK, "crash", "stale-plan", "lock-held"),
    "status": ("ok", *NETWORK, "crash", "lock-held"),
    "rerun-failed": ("ok", *NETWORK, "crash", "lock-held"),
    "cancel-all": ("ok", *NETWORK, "crash"),  # cancel takes no lock
}

#: What each command says when all went well.
OK_SAYS = {
    "validate": "2 files valid: 2 environments, 6 runs",
    "plan-text": "basic: 3 to fire",
    "plan-json": '"formatVersion": 1',
    "plan-markdown": "| Environment | To fire |",
    "plan-out": "Plan written to plans/next.json",
    "apply": '"status": "completed"',
    "status": "Refreshed from Coalesce",
    "rerun-failed": "failed node BROKEN",
    "cancel-all": "Canceled 2 runs.",
}
OK_EXIT = {"apply": 3, "rerun-failed": 3}  # the run "bad" fails (again); others exit 0
WITHHELD = "Coalesce's error text was withheld because it contained a credential (status 400"
#: What a command says once it went down a failure path: proof the path was taken.
PATH_SAYS = {
    "401": ["401 Unauthorized"],
    "400-echo": ["400 Bad Request", WITHHELD],  # the echo, withheld whole
    "400-html": ["400 Bad Request", WITHHELD],
    "500-echo": ["500 Internal Server Error"],
    "timeout": ["The read operation timed out"],
    "crash": [
        "Traceback (most recent call last)",
        "The RuntimeError's message was withheld because it contained a credential",
        "internal error: RuntimeError: Its message was withheld",
    ],
    "stale-plan": ["the plan plan.json is stale"],
    "lock-held": ["someone else"],
}

# Known leaks, each an xfail(strict=True) until fixed: (command, path) -> why.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}


def _expected_exit(command: str, path: str) -> int | None:
    """The exit code of ``command`` on ``path`` (None: not part of this contract)."""
    if path == "ok":
        return OK_EXIT.get(command, 0)
    if command == "status" and path != "crash":
        return None  # status shows what it could not refresh, and the rest
    if path in ("500-echo", "timeout") and command in ("apply", "rerun-failed"):
        return 5  # a startRun or rerun whose answer was lost stays uncertain
    return 1  # a plan that cannot read Coalesce fails too


def _case(command: str, path: str) -> Any:
    leak = KNOWN_LEAKS.get((command, path))
    marks = [pytest.mark.xfail(strict=True, reason=leak)] if leak else []
    return pytest.param(command, path, id=f"{command}:{path}", marks=marks)


MATRIX = [_case(command, path) for command, paths in PATHS_OF.items() for path in paths]


# -- Coalesce, with its failures -----------------------------------------------------------


def _echo(request: httpx.Request) -> str:
    """The request as a careless server repeats it in an error: URL, body and token."""
    body = request.content.decode("utf-8", "replace")
    return f"{request.method} {request.url} {body} sent with {request.headers['authorization']}"


@dataclass
class Coalesce:
    """The embedded simulator, behind a transport that answers in its place for the
    requests a fault targets (``method``), and counts them."""

    app: SimApp
    fault: str | None = None
    method: str = "POST"
    hits: int = 0
    _asgi: httpx.ASGITransport = field(init=False)

    def __post_init__(self) -> None:
        self._asgi = httpx.ASGITransport(app=self.app)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.fault is None or request.method != self.method:
            return await self._asgi.handle_async_request(request)
        self.hits += 1
        if self.fault == "timeout":
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        echoed = _echo(request)
        if self.fault == "400-echo":
            error = {"errorString": f"Invalid request: {echoed}", "errorDetail": echoed}
            return httpx.Response(400, json={"error": error})
        if self.fault == "400-html":
            page = f"<html><h1>400 Bad Request</h1><pre>{echoed}</pre></html>"
            return httpx.Response(400, text=page, headers={"content-type": "text/html"})
        assert self.fault == "500-echo", self.fault
        page = f"<html><h1>Internal Server Error</h1><pre>while handling {echoed}</pre></html>"
        return httpx.Response(500, text=page, headers={"content-type": "text/html"})


@dataclass(frozen=True)
class _NoWaitClock(coalesce_client.Clock):
    """The client's clock, with backoff waits that do not wait: a read is tried five
    times, with up to 7.5 s of backoff in all, and the paths here fail every try."""

    sleep: Callable[[float], Awaitable[None]] = field(default=lambda seconds: _no_wait())


async def _no_wait() -> None:
    return None


# -- the workspace ----------------------------------------------------------------------


@dataclass
class Workspace:
    root: Path
    coalesce: Coalesce
    monkeypatch: pytest.MonkeyPatch
    results: list[tuple[str, CliResult]] = field(default_factory=list)

    def run(self, run_cli: Callable[..., CliResult], *args: str) -> CliResult:
        result = run_cli(*args)
        self.results.append((" ".join(args), result))
        return result

    def hold_lock(self, environment: str) -> None:
        with open_state(self.root / ".runner" / "state.db") as store:
            store.acquire_lock(
                environment, holder="someone else", host=socket.gethostname(),
                pid=os.getpid(), ttl_seconds=600,
            )  # fmt: skip

    def crash_in(self, owner: Any, name: str, text: str | None = None) -> None:
        """Make ``owner.name`` raise an exception whose text holds every secret read
        (or ``text``)."""
        original = getattr(owner, name)

        def crash(*args: Any, **kwargs: Any) -> Any:
            if text is not None:
                raise RuntimeError(f"unexpected state after {original.__name__}: {text}")
            raise RuntimeError(
                f"unexpected state after {original.__name__}: token {TOKEN}, password "
                f"{PASSWORD!r}, key {KEY}, passphrase {PASSPHRASE} ({json.dumps(PASSWORD)}), "
                f"state password {PG_PASSWORD}"
            )

        self.monkeypatch.setattr(owner, name, crash)


@pytest.fixture
def workspace(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Workspace]:
    # The key lives outside the working folder: every file in there is searched.
    keys = tmp_path_factory.mktemp("keys")
    (keys / "canary.p8").write_text(KEY)
    monkeypatch.setenv("RUNNER_SECRET_DIRS", str(keys))
    monkeypatch.setenv("RUNNER_VAR_key_file", str(keys / "canary.p8"))
    monkeypatch.setenv("COALESCE_TOKEN", TOKEN)
    # A lost startRun is looked for once, then uncertain: the matrix checks what is
    # shown, not how long apply keeps looking.
    monkeypatch.setenv("RUNNER_LOOKUP_WINDOW", "0")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)
    monkeypatch.setenv("SNOWFLAKE_KEY_PASS", PASSPHRASE)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "ci" / "step-summary.md"))
    # As in a GitHub Actions job: validate and plan also print workflow annotations
    # (searched on stderr) and plan appends to the step summary (searched as a file).
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    (tmp_path / "ci").mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "basic.yaml").write_text(BASIC_SPEC)
    (tmp_path / "specs" / "keypair.yaml").write_text(KEYPAIR_SPEC)

    # A fresh simulator for this test behind sim://. Every command builds its own
    # client, so the fault transport goes where the client finds the simulator's.
    coalesce = Coalesce(create_app(parse_world(WORLD), clock=SimClock(1.0)))
    monkeypatch.setattr(runner.sim, "_embedded", coalesce.app)
    monkeypatch.setattr(runner.runtime, "SIMULATOR", coalesce.transport())
    monkeypatch.setattr(coalesce_client, "Clock", _NoWaitClock)

    # Every log record, at every level, of runner's own loggers (which do not propagate)
    # and of the libraries it uses.
    configure = runner.output.configure_logging
    logger = logging.getLogger("runner")
    level, handlers = logger.level, list(logger.handlers)

    def configure_and_capture(debug: bool) -> None:
        configure(debug)
        logger.addHandler(caplog.handler)
        logger.setLevel(logging.DEBUG)

    monkeypatch.setattr(runner.cli, "configure_logging", configure_and_capture)
    caplog.set_level(logging.DEBUG)
    yield Workspace(tmp_path, coalesce, monkeypatch)
    logger.setLevel(level)
    logger.handlers[:] = handlers


def _set_up(workspace: Workspace, run_cli: Callable[..., CliResult], path: str) -> None:
    """The earlier apply (and, for a stale plan, a plan file made before a spec changed)."""
    done = workspace.run(run_cli, "apply", "--auto-approve", "--no-wait", *FAST)
    assert done.code == 3, done.text  # bad failed; slow is left running
    if path == "stale-plan":
        assert workspace.run(run_cli, "plan", "--out", PLAN_FILE).code == 0
        spec = workspace.root / "specs" / "basic.yaml"
        spec.write_text(spec.read_text().replace("2026-01-05", "2026-01-06"))


def _enter(workspace: Workspace, command: str, path: str) -> None:
    """Put Coalesce, the state or the program in the failure mode ``path``."""
    if path == "401":
        workspace.monkeypatch.setenv("COALESCE_TOKEN", WRONG_TOKEN)
    elif path in ("400-echo", "400-html", "500-echo", "timeout"):
        workspace.coalesce.fault = path
        workspace.coalesce.method = TARGETS[command]
    elif path == "crash":
        workspace.monkeypatch.setenv("RUNNER_DEBUG", "1")
        workspace.crash_in(*CRASH_POINTS[command])
    elif path == "lock-held":
        workspace.hold_lock("basic")


def _args(command: str, path: str) -> tuple[str, ...]:
    args = COMMANDS[command]
    if path == "stale-plan":
        return (args[0], PLAN_FILE, *args[1:])
    return args


def _records(caplog: pytest.LogCaptureFixture) -> str:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.exc_text:
            texts.append(record.exc_text)
    return "\n".join(texts)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("command", "path"), MATRIX)
def test_no_canary_leaves_the_command(
    workspace: Workspace,
    run_cli: Callable[..., CliResult],
    caplog: pytest.LogCaptureFixture,
    command: str,
    path: str,
) -> None:
    _set_up(workspace, run_cli, path)
    _enter(workspace, command, path)

    result = workspace.run(run_cli, *_args(command, path))

    expected = _expected_exit(command, path)
    assert expected is None or result.code == expected, result.text[-3000:]
    for says in [OK_SAYS[command]] if path == "ok" else PATH_SAYS[path]:
        assert says in result.text, f"{says!r} not in:\n{result.text[-3000:]}"
    if path in ("400-echo", "400-html", "500-echo", "timeout"):
        assert workspace.coalesce.hits > 0, "the fault was never hit"
    leaked = _leaks(workspace, caplog)
    assert not leaked, f"secrets leaked: {leaked}"


def _leaks(workspace: Workspace, caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    """Where a canary shows up: each place, with the markers (or forms) found there."""
    found: dict[str, list[str]] = {}
    for what, done in workspace.results:
        for stream, text in (("stdout", done.out), ("stderr", done.err)):
            if leaks_in(text):
                found[f"{stream} of `runner {what}`"] = leaks_in(text)
    for name, data in _files(workspace.root).items():
        text = data.decode("utf-8", "replace")
        if leaks_in(text) or leaks_in(name):
            found[f"file {name}"] = leaks_in(text) + leaks_in(name)
    if leaks_in(_records(caplog)):
        found["log records"] = leaks_in(_records(caplog))
    return found


# -- the leak the matrix finds, pinned down -----------------------------------------------


def _non_json_error(body: str) -> str:
    """The error text runner makes of a 400 whose body is not JSON (a proxy's page)."""
    from runner.coalesce.errors import api_error_from_response
    from runner.secrets import Secret

    response = httpx.Response(400, text=body, headers={"content-type": "text/html"})
    Secret(CUT_SECRET)  # read, as a spec's secret is: known as a secret from then on
    Secret(SPACED_SECRET)
    error = api_error_from_response(
        response, method="POST", path="/scheduler/startRun", token_source="COALESCE_TOKEN"
    )
    return str(error)


CUT_SECRET = "CANARYcutM5d7" + "-abcdefghij" * 5
SPACED_SECRET = "CANARYspacedN8e2 two  spaces"


def test_a_secret_across_the_cut_of_a_long_error_page_is_not_shown() -> None:
    page = f"<html><pre>{'x' * 250} password={CUT_SECRET}</pre></html>"
    starts = page.index(CUT_SECRET)
    assert starts < 300 < starts + len(CUT_SECRET)  # the secret spans the 300th character
    text = _non_json_error(page)
    assert "CANARYcutM5d7" not in text, text


def test_a_secret_with_two_spaces_in_an_error_page_is_not_shown() -> None:
    text = _non_json_error(f"<html><pre>password={SPACED_SECRET} rejected</pre></html>")
    assert "CANARYspacedN8e2" not in text, text


def test_a_secret_in_a_short_error_page_is_withheld_whole() -> None:
    text = _non_json_error(f"<html><pre>password={CUT_SECRET} rejected</pre></html>")
    assert "CANARYcutM5d7" not in text and "password=" not in text, text
    assert WITHHELD in text, text


# -- every command x every encoding a server may echo a credential in ----------------------
#
# Coalesce (or a gateway before it) answers every request of a command with an error that
# repeats the request (URL, body and Authorization header) in one encoding. Whatever the
# encoding, no canary may reach any output or file, in that encoding or any other.


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _every_char(template: str) -> Callable[[str], str]:
    return lambda text: "".join(template.format(ord(c)) for c in text)


ECHO_ENCODINGS: dict[str, Callable[[str], str]] = {
    "as-is": lambda text: text,
    "url": lambda text: urllib.parse.quote(text, safe=""),
    "form": lambda text: urllib.parse.urlencode({"request": text}),
    "json-slash": lambda text: json.dumps(text)[1:-1].replace("/", "\\/"),
    "json-twice": lambda text: json.dumps(json.dumps(text)),
    "html-named": html.escape,
    "html-decimal": _every_char("&#{};"),
    "html-hex": _every_char("&#x{:x};"),
    "u-escapes": _every_char("\\u{:04x}"),
    "hex": lambda text: text.encode().hex(),
    "hex-upper": lambda text: text.encode().hex().upper(),
    "base64-0": lambda text: _b64(text.encode()),
    "base64-1": lambda text: _b64(b"x" + text.encode()),
    "base64-2": lambda text: _b64(b"xy" + text.encode()),
    "base64url": lambda text: base64.urlsafe_b64encode(b"x" + text.encode()).decode(),
    "basic-auth": lambda text: "Basic " + _b64(f"svc:{text}".encode()),
    "nfd": lambda text: unicodedata.normalize("NFD", text),
}


def _marker_forms(marker: str) -> set[str]:
    """A marker (letters and digits) in every encoding that changes it: the test's own,
    independent of the program's detection."""
    data = marker.encode()
    forms = {marker, data.hex(), data.hex().upper(), _every_char("\\u{:04x}")(marker)}
    forms |= {_every_char("&#{};")(marker), _every_char("&#x{:x};")(marker)}
    for before in range(3):  # base64 at each alignment: the characters only it decides
        encoded = _b64(b"\0" * before + data).rstrip("=")
        core = encoded[(0, 2, 3)[before] : len(encoded) - 1]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    return forms


ENCODED_MARKERS = sorted({form for marker in MARKERS for form in _marker_forms(marker)})


def encoded_leaks_in(text: str) -> list[str]:
    return [form for form in ENCODED_MARKERS if form in text] + leaks_in(text)


@dataclass
class EchoingCoalesce(Coalesce):
    """Answers the requests of ``method`` with a 400 echoing them in ``encoding``, in
    Coalesce's error shape and in the reason phrase."""

    encoding: str = "as-is"

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.fault != "echo" or request.method != self.method:
            return await super()._handle(request)
        self.hits += 1
        echoed = ECHO_ENCODINGS[self.encoding](_echo(request))
        error = {"errorString": f"Invalid request: {echoed}", "errorDetail": echoed}
        reason = ECHO_ENCODINGS[self.encoding](request.headers["authorization"])
        extensions = {"reason_phrase": reason.encode()} if reason.isascii() else {}
        return httpx.Response(400, json={"error": error}, extensions=extensions)


#: Every command that sends requests (validate sends none), those that act on the earlier
#: apply's runs first: a failed apply after them would leave them nothing to act on.
ECHOED_COMMANDS = [
    "rerun-failed",
    "cancel-all",
    "status",
    "plan-text",
    "plan-json",
    "plan-markdown",
    "plan-out",
    "apply",
    "apply-text",
]
ECHOED_ARGS = {
    **COMMANDS,
    "apply-text": ("apply", "--auto-approve", "--no-wait", "--if-running", "skip", *FAST),
}
ECHOED_TARGETS = {**TARGETS, "apply-text": "POST"}


@pytest.mark.parametrize("encoding", sorted(ECHO_ENCODINGS))
def test_no_canary_in_any_encoding_whatever_coalesce_echoes(
    workspace: Workspace,
    run_cli: Callable[..., CliResult],
    caplog: pytest.LogCaptureFixture,
    encoding: str,
) -> None:
    echoing = EchoingCoalesce(workspace.coalesce.app, encoding=encoding)
    workspace.monkeypatch.setattr(runner.runtime, "SIMULATOR", echoing.transport())
    _set_up(workspace, run_cli, "ok")

    for command in ECHOED_COMMANDS:
        echoing.fault, echoing.method, echoing.hits = "echo", ECHOED_TARGETS[command], 0
        result = workspace.run(run_cli, *ECHOED_ARGS[command])
        assert echoing.hits > 0, f"{command}: the echo was never sent"
        assert "withheld because it contained a credential" in result.text, (
            f"{command}:\n{result.text[-2000:]}"
        )

    found: dict[str, list[str]] = {}
    for what, done in workspace.results:
        for stream, text in (("stdout", done.out), ("stderr", done.err)):
            if encoded_leaks_in(text):
                found[f"{stream} of `runner {what}`"] = encoded_leaks_in(text)
    for name, data in _files(workspace.root).items():
        if encoded_leaks_in(data.decode("utf-8", "replace")):
            found[f"file {name}"] = encoded_leaks_in(data.decode("utf-8", "replace"))
    if encoded_leaks_in(_records(caplog)):
        found["log records"] = encoded_leaks_in(_records(caplog))
    assert not found, f"secrets leaked: {found}"
    assert {"ci/step-summary.md", "reports/apply.md"} <= set(_files(workspace.root))


# -- short and common secrets change nothing the program writes ----------------------------

#: Secrets that are also keys, enums, JSON literals, digits or names in the documents.
SHORT_SECRETS = ["x", "1", "e", "true", "null", "run", "stop", "good", "basic"]
_TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d| UTC)?")


def _use_coalesce(root: Path, monkeypatch: pytest.MonkeyPatch, token: str, password: str) -> None:
    """A fresh working folder and simulator that accepts ``token``; the Basic
    environment's password is ``password``."""
    (root / "specs").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("COALESCE_TOKEN", token)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", password)
    (root / "specs" / "basic.yaml").write_text(BASIC_SPEC)
    world = {**WORLD, "tokens": [token]}
    app = create_app(parse_world(world), clock=SimClock(1.0))
    monkeypatch.setattr(runner.sim, "_embedded", app)
    monkeypatch.setattr(runner.runtime, "SIMULATOR", Coalesce(app).transport())
    monkeypatch.setattr(coalesce_client, "Clock", _NoWaitClock)
    KNOWN_SECRETS.clear()


def _documents(run_cli: Callable[..., CliResult]) -> dict[str, Any]:
    """Every JSON document of a plan, its plan file applied, and the status after."""
    planned = run_cli("plan", "--format", "json")
    assert planned.code == 0, planned.text
    assert run_cli("plan", "--out", "plans/next.json").code == 0
    applied = run_cli(
        "apply", "plans/next.json", "--auto-approve", "--format", "json", "--no-wait", *FAST
    )
    assert applied.code == 3, applied.text  # "bad" fails, whatever the secret
    status = run_cli("status", "--format", "json")
    documents = {
        "plan": planned.out,
        "plan file": Path("plans/next.json").read_text(),
        "apply": applied.out,
        "status": status.out,
    }
    return {name: json.loads(_TIMES.sub("<time>", text)) for name, text in documents.items()}


def _without_weak_warnings(value: Any) -> Any:
    """The documents less the warning that a secret is weak (the one expected change)."""
    if isinstance(value, dict):
        counts = ("warnings", "warningCount")  # one more with the warning
        return {
            k: "<Coalesce's text>" if k == "error" else _without_weak_warnings(v)
            for k, v in value.items()
            if not (k in counts and isinstance(v, int))
        }
    if isinstance(value, list):
        kept = [v for v in value if not _is_weak_warning(v)]
        return [_without_weak_warnings(v) for v in kept]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value if float(value).is_integer() else "<number>"  # durations
    return value


def _is_weak_warning(value: Any) -> bool:
    message = value.get("message", "") if isinstance(value, dict) else value
    return isinstance(message, str) and "is weak (shorter than" in message


@pytest.mark.parametrize("short", SHORT_SECRETS)
def test_a_short_secret_leaves_every_document_as_a_long_one_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., CliResult],
    short: str,
) -> None:
    _use_coalesce(tmp_path / "long", monkeypatch, TOKEN, "a-long-random-password-4c2e9f")
    expected = _documents(run_cli)
    _use_coalesce(tmp_path / "short", monkeypatch, short, short)
    found = _documents(run_cli)

    for name in expected:
        assert _without_weak_warnings(found[name]) == _without_weak_warnings(expected[name]), name
    # Coalesce's text (a failed node's error) is the one thing that may differ: it is
    # withheld whole while a secret too short to look for is known.
    errors = {n["error"] for r in found["apply"]["runs"] for n in r.get("failedNodes", [])}
    if len(short) < MIN_DETECTABLE:
        assert errors == {withheld("Coalesce's error text", why=TOO_SHORT)}
    else:
        assert len(errors) == 1 and BROKEN_ERROR in errors.pop()
    plan_file = found["plan file"]
    assert "onFailure" in json.dumps(plan_file) and "maxConcurrent" in json.dumps(plan_file)


# -- the oracle: where a secret would have been replaced reveals nothing --------------------


def _de_bruijn_digits(length: int) -> str:
    """Every string of ``length`` decimal digits, each once, as one sequence."""
    sequence: list[int] = []
    a = [0] * (10 * length)

    def db(t: int, p: int) -> None:
        if t > length:
            if length % p == 0:
                sequence.extend(a[1 : p + 1])
        else:
            a[t] = a[t - p]
            db(t + 1, p)
            for j in range(a[t - p] + 1, 10):
                a[t] = j
                db(t + 1, t)

    db(1, 1)
    text = "".join(map(str, sequence))
    return text + text[: length - 1]


@pytest.mark.parametrize("command", ["text", "json", "markdown"])
def test_a_plan_is_the_same_whatever_the_pin_it_holds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., CliResult],
    command: str,
) -> None:
    """A pull request that adds a secret and a plain parameter holding every 4-digit
    string learns nothing from the plan: two PINs give the same bytes."""
    sequence = _de_bruijn_digits(4)
    assert all(f"{n:04d}" in sequence for n in range(10_000))
    outputs = []
    for pin in ("4821", "0937"):
        _use_coalesce(tmp_path / pin, monkeypatch, TOKEN, pin)
        spec = Path("specs/basic.yaml")
        spec.write_text(
            spec.read_text().replace(
                'parameters: {load_date: "2026-01-05"}',
                f'parameters: {{load_date: "2026-01-05", probe: "{sequence}"}}',
            )
        )
        planned = run_cli("plan", "--format", command)
        assert planned.code == 0, planned.text
        assert sequence in planned.out  # the plain parameter is shown whole
        outputs.append((_TIMES.sub("<time>", planned.out), planned.err))
    assert outputs[0] == outputs[1]


# -- a PostgreSQL state: its password in the URL, or in PGPASSWORD ------------------------
#
# The same workspace, its state on PostgreSQL (a role of its own whose password is a
# canary), the password given in the state URL (escaped as a URL must) or in PGPASSWORD.
# Every command that reads or writes the state, on its way through: all went well, a
# crash, the database refusing the password, the database not there. Searched for in
# every encoding of the echo matrix above.

STATE_COMMANDS: dict[str, tuple[str, ...]] = {
    "validate": COMMANDS["validate"],
    "plan-text": COMMANDS["plan-text"],
    "plan-json": COMMANDS["plan-json"],
    "plan-markdown": COMMANDS["plan-markdown"],
    "plan-out": COMMANDS["plan-out"],
    "apply": COMMANDS["apply"],
    "status": COMMANDS["status"],
    "state-copy-out": ("state", "copy", "{state}", "copies/state.db"),
    "state-copy-in": ("state", "copy", "{state}", "{state_elsewhere}"),
}
STATE_OK_SAYS = {
    **{name: OK_SAYS[name] for name in OK_SAYS if name in STATE_COMMANDS},
    "state-copy-out": "Verified: every row read back from the target matches the source",
    "state-copy-in": "Verified: every row read back from the target matches the source",
}
STATE_CRASH_POINTS: dict[str, tuple[Any, str]] = {
    **{name: CRASH_POINTS[name] for name in CRASH_POINTS if name in STATE_COMMANDS},
    "state-copy-out": ("runner.state.copy", "_verify"),
    "state-copy-in": ("runner.state.copy", "_verify"),
}
STATE_PATHS = ("ok", "crash", "pg-password-refused", "pg-unreachable")


@dataclass(frozen=True)
class PgState:
    """The canary role's database, and how to reach it."""

    port: int
    database: str

    def url(self, password: str | None, *, port: int | None = None, schema: str = "") -> str:
        secret = f":{urllib.parse.quote(password, safe='')}" if password is not None else ""
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://canary{secret}@127.0.0.1:{port or self.port}/{self.database}{query}"


@pytest.fixture
def pg_state(pg_server: Any) -> PgState:
    from psycopg import sql

    database = pg_server.new_database()
    with pg_server.admin() as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'canary'").fetchone()
        if not exists:
            admin.execute("CREATE ROLE canary LOGIN")
        admin.execute(sql.SQL("ALTER ROLE canary PASSWORD {}").format(sql.Literal(PG_PASSWORD)))
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO canary").format(sql.Identifier(database)))
    return PgState(pg_server.port, database)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _use_state(
    workspace: Workspace, pg: PgState, where: str, *, password: str, port: int | None = None
) -> dict[str, str]:
    """Point RUNNER_STATE (and PGPASSWORD) at the canary's state; the state URLs a copy
    names, as given on the command line."""
    in_url = where == "url"
    workspace.monkeypatch.delenv("PGPASSWORD", raising=False)
    if not in_url:
        workspace.monkeypatch.setenv("PGPASSWORD", password)
    state = pg.url(password if in_url else None, port=port)
    workspace.monkeypatch.setenv("RUNNER_STATE", state)
    elsewhere = pg.url(password if in_url else None, port=port, schema="copied")
    return {"state": state, "state_elsewhere": elsewhere}


@pytest.mark.parametrize("path", STATE_PATHS)
@pytest.mark.parametrize("command", sorted(STATE_COMMANDS))
@pytest.mark.parametrize("where", ["url", "PGPASSWORD"])
def test_no_state_password_leaves_the_command(
    workspace: Workspace,
    run_cli: Callable[..., CliResult],
    caplog: pytest.LogCaptureFixture,
    pg_state: PgState,
    where: str,
    command: str,
    path: str,
) -> None:
    urls = _use_state(workspace, pg_state, where, password=PG_PASSWORD)
    _set_up(workspace, run_cli, "ok")  # the earlier apply, in the PostgreSQL state
    (workspace.root / "copies").mkdir()
    says: list[str]
    if path == "crash":
        workspace.monkeypatch.setenv("RUNNER_DEBUG", "1")
        owner, name = STATE_CRASH_POINTS[command]
        workspace.crash_in(
            importlib.import_module(owner) if isinstance(owner, str) else owner, name
        )
        says, expected = PATH_SAYS["crash"], 1
    elif path == "ok" or command == "validate":  # validate reads no state
        says, expected = [STATE_OK_SAYS[command]], OK_EXIT.get(command, 0)
    else:
        refused = path == "pg-password-refused"
        urls = _use_state(
            workspace,
            pg_state,
            where,
            password=PG_WRONG_PASSWORD if refused else PG_PASSWORD,
            port=None if refused else _free_port(),
        )
        says = [
            "the PostgreSQL state at postgresql://canary@127.0.0.1:",
            "password authentication failed" if refused else "Connection refused",
        ]
        expected = 1
    args = tuple(arg.format(**urls) for arg in STATE_COMMANDS[command])

    result = workspace.run(run_cli, *args)

    assert result.code == expected, result.text[-3000:]
    for said in says:
        assert said in result.text, f"{said!r} not in:\n{result.text[-3000:]}"
    found: dict[str, list[str]] = {}
    for what, done in workspace.results:
        for stream, text in (("stdout", done.out), ("stderr", done.err)):
            if encoded_leaks_in(text):
                found[f"{stream} of `runner {what}`"] = encoded_leaks_in(text)
    for name, data in _files(workspace.root).items():
        text = data.decode("utf-8", "replace")
        if encoded_leaks_in(text) or encoded_leaks_in(name):
            found[f"file {name}"] = encoded_leaks_in(text) + encoded_leaks_in(name)
    if encoded_leaks_in(_records(caplog)):
        found["log records"] = encoded_leaks_in(_records(caplog))
    assert not found, f"secrets leaked: {found}"
    if command == "state-copy-out" and path == "ok":
        assert (workspace.root / "copies" / "state.db").exists()  # searched above
