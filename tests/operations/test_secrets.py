"""Canary credentials never show up in what status, cancel, rerun and unlock print, in
the state file, or in the simulator's request log (which the simulator redacts)."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import CliResult
from tests.operations.conftest import WORLD, RunCli, Sim, Workspace, apply_args

CANARY_TOKEN = "CANARY-TOKEN-19be"
CANARY_PASSWORD = "CANARY-PASSWORD-7f3a"
CANARIES = (CANARY_TOKEN, CANARY_PASSWORD)


def test_canary_credentials_appear_in_no_output_state_or_request_log(
    run_cli: RunCli, workspace: Workspace, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = copy.deepcopy(WORLD)
    world["tokens"] = [CANARY_TOKEN]
    sim.reset(world)
    monkeypatch.setenv("COALESCE_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", CANARY_PASSWORD)
    results: list[CliResult] = []

    def run(*args: str) -> CliResult:
        result = run_cli(*args)
        results.append(result)
        return result

    assert run(*apply_args("good", "bad", "slow-a", "slow-b", wait=False)).code == 0
    assert run("status", "--refresh").code == 0
    assert run("status", "--format", "json").code == 0
    assert run("cancel", "ops/slow-a").code == 0
    assert run("cancel", "--all", "--format", "json").code == 0
    # bad failed, the slow ones were canceled: all three are rerun.
    assert run("rerun", "--failed", "--auto-approve", "--no-wait").code == 0
    assert run("cancel", "--all").code == 0
    assert run("rerun", "ops/bad", "--auto-approve", "--poll-interval", "0.05").code == 3
    assert run("unlock", "ops").code == 0
    # A refused rerun's error text (the run completed) must not carry them either.
    assert run("rerun", "ops/good", "--auto-approve").code == 1

    # The credentials did reach the simulator: it accepted the token and the password.
    assert len(sim.requests("POST /scheduler/rerun")) == 4
    assert {e["status"] for e in sim.requests("POST /scheduler/rerun")} == {200}
    texts = {
        "output": "".join(r.text for r in results),
        "request log": sim.log_text(),
    }
    state = workspace.state_bytes()
    for canary in CANARIES:
        for where, text in texts.items():
            assert canary not in text, f"{canary} in the {where}"
        assert canary.encode() not in state, f"{canary} in the state file"
