"""The state never holds a secret: refused when handed over as a Secret, scrubbed
when it shows up as text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.secrets import REDACTED, SCRUBBER, Secret, redact_all
from runner.state import SecretInStateError, SqliteState
from runner.state.sanitize import scrubbed, to_json

CANARY = "CANARY-PASSWORD-7f3a"
TOKEN_CANARY = "CANARY-TOKEN-91c2"


def _request(password: Secret) -> dict[str, Any]:
    return {
        "runDetails": {"environmentID": "12", "jobID": "7", "parallelism": 8},
        "parameters": {"load_date": "2024-05-01"},
        "userCredentials": {
            "snowflakeAuthType": "Basic",
            "snowflakeUsername": "loader",
            "snowflakePassword": password,
        },
    }


def _begin(store: SqliteState) -> int:
    return store.begin_apply(
        who="alice", host="build-7", git_commit="abc123", environments=["prod"], argv=["apply"]
    )


def test_a_request_holding_a_secret_is_refused(store: SqliteState) -> None:
    apply_id = _begin(store)
    serial = store.serial()

    with pytest.raises(SecretInStateError) as caught:
        store.record_intent(apply_id, "prod", "marts", "orders", _request(Secret(CANARY)), "h")
    assert "userCredentials.snowflakePassword" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert store.runs_of_apply(apply_id) == []
    assert store.serial() == serial


def test_a_redacted_request_is_stored_as_given(store: SqliteState) -> None:
    apply_id = _begin(store)
    request = redact_all(_request(Secret(CANARY)))
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", request, "h")

    run = store.get_run(run_id)
    assert run is not None
    assert run.request == request
    assert run.request["userCredentials"]["snowflakePassword"] == REDACTED


def _files(state_file: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in state_file.parent.iterdir()
        if path.name.startswith(state_file.name)
    }


def _assert_no_canary(state_file: Path) -> None:
    files = _files(state_file)
    assert state_file.name in files
    for name, content in files.items():
        for canary in (CANARY, TOKEN_CANARY):
            for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                assert canary.encode(encoding) not in content, f"{canary} found in {name}"


def test_a_whole_journal_leaves_no_secret_in_the_database_files(
    open_store: Callable[..., SqliteState], state_file: Path
) -> None:
    password = Secret(CANARY)
    token = Secret(TOKEN_CANARY)
    store = open_store()
    apply_id = store.begin_apply(
        who="alice",
        host="build-7",
        git_commit="abc123",
        environments=["prod"],
        # a value that leaked onto the command line by mistake
        argv=["apply", "--var", f"token={token.reveal()}"],
    )

    with pytest.raises(SecretInStateError):
        store.record_intent(apply_id, "prod", "marts", "orders", _request(password), "h")
    run_id = store.record_intent(
        apply_id, "prod", "marts", "orders", redact_all(_request(password)), "h"
    )
    # the server echoes credentials in its error texts, and a plain value embeds one
    store.record_ambiguous(run_id, f"read timeout; server said: bad password {CANARY}")
    store.record_fired(run_id, 4711, f"https://app.coalescesoftware.io/runs/4711?t={TOKEN_CANARY}")
    store.record_status(
        run_id,
        "failed",
        failed_nodes=[{"nodeName": "ORDERS", "error": f"login failed for {CANARY}"}],
        message=f"Snowflake said: password {CANARY!r} rejected",
    )
    other = store.record_intent(
        apply_id,
        "prod",
        "marts",
        "customers",
        {"parameters": {"note": f"see {CANARY}"}},
        "h2",
    )
    store.record_fired(other, 4712)
    store.record_status(other, "completed")
    token_lock = store.acquire_lock(
        "prod", holder=f"ci {TOKEN_CANARY}", host="build-7", pid=1, ttl_seconds=60
    )
    store.release_lock(token_lock)
    store.finish_apply(apply_id, "failed")

    _assert_no_canary(state_file)  # while the WAL still holds everything
    run = store.get_run(run_id)
    assert run is not None
    assert run.message == f"Snowflake said: password '{REDACTED}' rejected"
    assert run.failed_nodes[0]["error"] == f"login failed for {REDACTED}"
    assert run.run_link is not None and TOKEN_CANARY not in run.run_link
    customers = store.get_run(other)
    assert customers is not None and customers.request["parameters"]["note"] == f"see {REDACTED}"
    record = store.get_apply(apply_id)
    assert record is not None and record.argv[-1] == f"token={REDACTED}"

    store.close()  # checkpoints the WAL into the database file
    _assert_no_canary(state_file)


# -- the one-pass JSON of the journal ----------------------------------------------------

_SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda text: bool(text.strip()))


def _json_values(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), leaf)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(leaf, inner, max_size=3),
        max_leaves=8,
    )


@settings(max_examples=300, deadline=None)
@given(secret=_SECRET_TEXT, data=st.data())
def test_stored_json_never_holds_a_secret_in_any_form(secret: str, data: st.DataObject) -> None:
    """to_json takes a one-pass shortcut when it can: it must store exactly what scrubbing
    every string first would store, whatever the secret's characters and wherever it
    hides (as is, JSON- or repr-escaped, inside keys and nested values)."""
    SCRUBBER.clear()
    SCRUBBER.register(secret)
    forms = [secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]]
    words = st.sampled_from(["a", "note ", *forms]) | st.text(max_size=4)
    strings = st.lists(words, min_size=1, max_size=3).map("".join)
    value = data.draw(_json_values(strings))

    stored = to_json(value, "test")

    expected = json.dumps(scrubbed(value), sort_keys=True, separators=(",", ":"))
    assert stored == expected
    if set(secret).isdisjoint(REDACTED):  # else the marker itself could spell it
        texts = _strings(json.loads(stored))
        assert not [text for text in texts for form in forms if form in text]


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(text for item in value.values() for text in _strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_keys_that_are_not_strings_are_stored_the_same_either_way() -> None:
    SCRUBBER.clear()
    SCRUBBER.register("s3cr3t-value")
    value = {True: 1, None: 2, 3: "x", 1.5: "y"}
    with_secret = {**value, "note": "s3cr3t-value"}  # takes the long way
    assert to_json(value, "t") == '{"1.5":"y","3":"x","null":2,"true":1}'
    assert to_json(with_secret, "t").startswith('{"1.5":"y","3":"x","note":"(secret)",')
