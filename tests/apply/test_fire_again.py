"""The command apply prints to fire just the runs it did not fire works as typed: the
same spec paths (or, for a plan file, the specs it was made from and its --var values),
the same state and options, and a word on when to run it that fits the reason."""

from __future__ import annotations

import shlex
from pathlib import Path

from runner.apply.model import ApplyResult, NotFired, RunReport, RunState
from runner.render.apply_output import next_steps
from runner.sim import SimApp
from runner.state import open_state
from tests.apply._support import batch, hold_lock_elsewhere, run, write_spec

STATE = "st/state.db"


def _tags(app: SimApp) -> list[str]:
    return [str(r.body["parameters"]["tag"]) for r in app.simulator.all_runs()]


def _printed_command(out: str, when: str) -> list[str]:
    prefix = f"Not fired: fire just those, {when}, with: "
    (line,) = [x for x in out.splitlines() if x.startswith(prefix)]
    words = shlex.split(line.removeprefix(prefix))
    assert words[0] == "runner"
    return words[1:]


def test_runs_refused_for_a_lock_are_fired_by_the_printed_command(
    run_cli, embedded: SimApp, tmp_path: Path
) -> None:
    folder = tmp_path / "conf"  # not the default specs/
    write_spec(folder, "alpha", "1", "sim://", [batch("b", [run("a1"), run("a2")])])
    write_spec(folder, "beta", "2", "sim://", [batch("b", [run("b1")])])
    (tmp_path / "st").mkdir()
    store = open_state(Path(STATE))
    try:
        held = hold_lock_elsewhere(store, "alpha", ttl_seconds=600)
        first = run_cli(
            "apply", "conf", "--state", STATE, "--auto-approve", "--poll-interval", "0.02"
        )
        assert first.code == 1, first.text
        assert sorted(_tags(embedded)) == ["b1"]
        again = _printed_command(first.out, "once the lock is free")
        store.release_lock(held)
    finally:
        store.close()

    second = run_cli(*again)

    assert second.code == 0, second.text
    assert sorted(_tags(embedded)) == ["a1", "a2", "b1"], "just alpha's runs, once each"
    assert "--state" in again and STATE in again and "conf" in again


def test_a_plan_file_refused_for_a_lock_prints_its_specs_and_variables(
    run_cli, embedded: SimApp, tmp_path: Path
) -> None:
    dated = run("a1", parameters={"tag": "a1", "day": "{{ var('day') }}"})
    write_spec(tmp_path / "conf", "alpha", "1", "sim://", [batch("b", [dated])])
    planned = run_cli("plan", "conf", "--offline", "--var", "day=2026-01-05", "--out", "p.json")
    assert planned.code == 0, planned.text
    store = open_state(Path(".runner/state.db"))
    try:
        held = hold_lock_elsewhere(store, "alpha", ttl_seconds=600)
        first = run_cli("apply", "p.json", "--auto-approve", "--poll-interval", "0.02")
        assert first.code == 1, first.text
        again = _printed_command(first.out, "once the lock is free")
        store.release_lock(held)
    finally:
        store.close()

    second = run_cli(*again)

    assert second.code == 0, second.text
    (fired,) = embedded.simulator.all_runs()
    assert fired.body["parameters"] == {"tag": "a1", "day": "2026-01-05"}


def test_the_word_on_when_fits_why_runs_were_not_fired() -> None:
    def refused(name: str, why: NotFired) -> RunReport:
        return RunReport("prod", "b", name, state=RunState.NOT_STARTED, not_fired=why)

    result = ApplyResult(
        1,
        (
            refused("locked", NotFired.LOCK),
            refused("deploy", NotFired.ENVIRONMENT),
            refused("typo", NotFired.SPEC),
            refused("down", NotFired.UNREACHABLE),
            refused("also-down", NotFired.UNREACHABLE),
        ),
    )

    assert next_steps(result) == [
        "Not fired: fire just those, once the lock is free, with: runner apply --run prod/locked",
        "Not fired: fire just those, once the environment is redeployed, with: "
        "runner apply --run prod/deploy",
        "Not fired: fire just those, once the spec is fixed, with: runner apply --run prod/typo",
        "Not fired: fire just those, once Coalesce is reachable, with: "
        "runner apply --run prod/down --run prod/also-down",
    ]
