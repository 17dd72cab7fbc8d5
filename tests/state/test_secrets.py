"""The state never holds a secret: refused when handed over as a Secret, and never
edited: what the program and the spec author wrote is stored exactly as given, whatever
secrets are known (foreign text reaches the state only through ``foreign_text``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.secrets import KNOWN_SECRETS, REDACTED, Secret, foreign_text, redact_all
from runner.state import SecretInStateError, SqlState
from runner.state.sanitize import to_json

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


def _begin(store: SqlState) -> int:
    return store.begin_apply(
        who="alice", host="build-7", git_commit="abc123", environments=["prod"], argv=["apply"]
    )


def test_a_request_holding_a_secret_is_refused(store: SqlState) -> None:
    apply_id = _begin(store)
    serial = store.serial()

    with pytest.raises(SecretInStateError) as caught:
        store.record_intent(apply_id, "prod", "marts", "orders", _request(Secret(CANARY)), "h")
    assert "userCredentials.snowflakePassword" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert store.runs_of_apply(apply_id) == []
    assert store.serial() == serial


def test_a_redacted_request_is_stored_as_given(store: SqlState) -> None:
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
    open_store: Callable[..., SqlState], state_file: Path
) -> None:
    password = Secret(CANARY)
    Secret(TOKEN_CANARY)
    store = open_store()
    apply_id = _begin(store)

    with pytest.raises(SecretInStateError):
        store.record_intent(apply_id, "prod", "marts", "orders", _request(password), "h")
    run_id = store.record_intent(
        apply_id, "prod", "marts", "orders", redact_all(_request(password)), "h"
    )
    # The server echoes credentials in its error texts: foreign text, through the gate.
    echoed = foreign_text(f"server said: bad password {CANARY}", context="Coalesce's error text")
    store.record_ambiguous(run_id, f"read timeout; {echoed}")
    store.record_fired(run_id, 4711, "https://app.coalescesoftware.io/runs/4711")
    node_error = foreign_text(f"login failed for {CANARY!r}", context="Coalesce's error text")
    store.record_status(
        run_id, "failed", failed_nodes=[{"nodeName": "ORDERS", "error": node_error}]
    )
    store.finish_apply(apply_id, "failed")

    _assert_no_canary(state_file)  # while the WAL still holds everything
    run = store.get_run(run_id)
    assert run is not None
    assert run.failed_nodes[0]["error"] == (
        "Coalesce's error text was withheld because it contained a credential"
    )
    store.close()  # checkpoints the WAL into the database file
    _assert_no_canary(state_file)


@pytest.mark.parametrize("short", ["x", "1", "e", "true", "null", "run", "stop", "orders"])
def test_a_short_secret_never_changes_what_is_stored(store: SqlState, short: str) -> None:
    """A secret that is also a key, an enum or a run name (``run``, ``stop``, ``true``)
    leaves every stored value exactly as written."""
    Secret(short)
    apply_id = _begin(store)
    request = redact_all(_request(Secret(short)))
    run_id = store.record_intent(apply_id, "prod", "marts", "orders", request, "h")
    store.record_fired(run_id, 17, "https://app.coalescesoftware.io/runs/17")
    store.record_status(run_id, "completed", message="run completed; onFailure: stop")

    run = store.get_run(run_id)
    assert run is not None
    assert run.request == request and run.name == "orders"
    assert run.message == "run completed; onFailure: stop"
    assert run.run_link == "https://app.coalescesoftware.io/runs/17"


# -- the one-pass JSON of the journal ----------------------------------------------------

_SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda text: bool(text.strip()))


def _json_values(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), leaf)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(leaf, inner, max_size=3),
        max_leaves=8,
    )


@settings(max_examples=200, deadline=None)
@given(secret=_SECRET_TEXT, data=st.data())
def test_stored_json_is_exactly_the_value_whatever_secrets_are_known(
    secret: str, data: st.DataObject
) -> None:
    """Nothing is replaced: the stored JSON is the value's canonical JSON, even when a
    known secret's text happens to be in a key or a value."""
    KNOWN_SECRETS.clear()
    Secret(secret)
    words = st.sampled_from(["a", "note ", secret, json.dumps(secret)[1:-1]]) | st.text(max_size=4)
    strings = st.lists(words, min_size=1, max_size=3).map("".join)
    value = data.draw(_json_values(strings))

    stored = to_json(value, "test")

    assert stored == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert json.loads(stored) == json.loads(json.dumps(value))


def test_keys_that_are_not_strings_are_stored_as_json_writes_them() -> None:
    value = {True: 1, None: 2, 3: "x", 1.5: "y"}
    assert to_json(value, "t") == '{"1.5":"y","3":"x","null":2,"true":1}'


def test_a_secret_nested_in_a_mapping_json_does_not_take_is_refused() -> None:
    from types import MappingProxyType

    with pytest.raises(SecretInStateError):
        to_json(MappingProxyType({"p": Secret("s3cr3t-value")}), "t")
    assert to_json(MappingProxyType({"b": (1, 2)}), "t") == '{"b":[1,2]}'
