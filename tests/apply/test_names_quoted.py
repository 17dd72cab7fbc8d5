"""Names in messages are quoted: an environment, batch or run called ``a``, ``the`` or
``of`` never reads as a word of the sentence it is in."""

from __future__ import annotations

from pathlib import Path

from runner.errors import quoted, quoted_list
from runner.sim import SimApp
from runner.state import open_state
from tests.apply._support import FAILING, batch, hold_lock_elsewhere, run, write_spec


def test_quoted_is_the_repr_style_the_messages_use() -> None:
    assert quoted("a") == "'a'"
    assert quoted("fin/it's") == '"fin/it\'s"'  # still one readable token
    assert quoted_list(["a", "the"]) == "'a', 'the'"


def test_apply_messages_quote_short_names(run_cli, embedded: SimApp, specs: Path) -> None:
    # Environment 'a' (id 1): batch 'the' fails, so batch 'of' is skipped.
    write_spec(
        specs, "a", "1", "sim://",
        [batch("the", [run("a", FAILING)]), batch("of", [run("the")])],
    )  # fmt: skip
    # Environment 'the' is in Failed Deploy: Coalesce would refuse its run 'a'.
    write_spec(specs, "the", "4", "sim://", [batch("of", [run("a")])])

    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 1, result.text
    assert "skipped: 'a' in batch 'the' did not complete (onFailure: stop)" in result.out
    assert "would refuse 'a' (no forceIgnoreEnvironmentStatus)" in result.out
    assert "error: 'the': environment 4 is in Failed Deploy" in result.out

    rerun = run_cli("rerun", "a/the")
    assert rerun.code == 1
    assert "no fired run in the state matches 'a/the'" in rerun.err


def test_lock_and_unlock_messages_quote_the_environment(
    run_cli, embedded: SimApp, specs: Path
) -> None:
    write_spec(specs, "a", "1", "sim://", [batch("the", [run("of")])])
    store = open_state(Path(".runner/state.db"))
    try:
        hold_lock_elsewhere(store, "a", ttl_seconds=600)
        result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")
    finally:
        store.close()

    assert result.code == 1, result.text
    assert "environment 'a' is locked by another apply" in result.out
    assert "'a' was not locked" not in result.out
    unknown = run_cli("unlock", "the")
    assert unknown.code == 1
    assert "unknown environment 'the': the state at" in unknown.err
    assert "knows 'a'" in unknown.err


def test_spec_and_plan_messages_quote_names(run_cli, write) -> None:
    spec = 'version: 1\nenvironmentID: "5"\ncoalesce: {url: "sim://"}\n'
    write({"specs/a.yaml": spec + "runs: [{name: of, jobID: '1'}, {name: of, jobID: '2'}]\n"})
    validate = run_cli("validate")
    assert validate.code == 1
    assert "duplicate run name 'of' (first used at line" in validate.text

    write({"specs/a.yaml": spec + "runs: [{name: of, jobID: '1'}]\n"})
    typo = run_cli("plan", "--offline", "--env", "the")
    assert typo.code == 1
    assert "(the specs name 'a')" in typo.err
