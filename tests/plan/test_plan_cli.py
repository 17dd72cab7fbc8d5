"""`runner plan` from the command line: exit codes, plan files, online facts, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SPEC = (
    'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
    "userCredentials:\n  snowflakeUsername: svc\n"
    "  snowflakePassword: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"\n"
    "runs:\n"
    "  - name: stage\n    includeNodesSelector: '{ location: STG }'\n"
    "  - name: nothing\n    includeNodesSelector: '{ location: NOWHERE }'\n    allowEmpty: true\n"
)
CANARY_PASSWORD = 'CANARY-PLAN-pw"{:}\n#x'
CANARY_TOKEN = "sim-demo-token"  # the simulator's token is not a canary; the password is


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", CANARY_PASSWORD)


def test_detailed_exitcode_is_2_with_changes_and_0_without(run_cli, write) -> None:
    write({"specs/e.yaml": SPEC})
    assert run_cli("plan", "--offline", "--detailed-exitcode").code == 2
    assert run_cli("plan", "--offline").code == 0


def test_online_plan_counts_the_nodes_each_selector_picks(run_cli, write, secrets) -> None:
    write({"specs/e.yaml": SPEC})
    result = run_cli("plan", "--show-nodes")
    assert result.code == 0, result.err
    assert "STG_CUSTOMERS" in result.out
    document = json.loads(run_cli("plan", "--format", "json").out)
    selections = {run["name"]: run["selection"] for run in document["runs"]}
    assert selections["stage"]["count"] == 11
    assert selections["nothing"]["count"] == 0
    [env] = document["environments"]
    assert env["status"] == "Waiting"


def test_a_run_that_will_be_refused_fails_the_plan(run_cli, write, secrets) -> None:
    write({"specs/e.yaml": SPEC.replace("    allowEmpty: true\n", "")})
    result = run_cli("plan")
    assert result.code == 1
    assert "the include selector matches no node" in result.out


def test_no_canary_in_any_plan_output_plan_file_or_state(
    run_cli, write, secrets, tmp_path: Path
) -> None:
    write({"specs/e.yaml": SPEC})
    outputs = [
        run_cli("plan", "--format", fmt, "--out", f"plan-{fmt}.json").text
        for fmt in ("text", "json", "markdown")
    ]
    applied = run_cli("apply", "plan-text.json", "--auto-approve", "--poll-interval", "0.05")
    assert applied.code == 0, applied.err
    outputs.append(applied.text)
    outputs.append(run_cli("plan", "--format", "json").text)
    files = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in tmp_path.rglob("*"))
    for text in outputs:
        assert "CANARY-PLAN" not in text
    for blob in files:
        if blob.startswith(b"version: 1"):
            continue  # the spec itself names the variable, not the value
        assert b"CANARY-PLAN" not in blob


def test_plan_file_applies_only_while_fresh(run_cli, write, secrets) -> None:
    write({"specs/e.yaml": SPEC})
    assert run_cli("plan", "--out", "plan.json").code == 0
    write({"specs/e.yaml": SPEC.replace("STG", "DIM")})
    result = run_cli("apply", "plan.json", "--auto-approve")
    assert result.code == 1
    assert "specs/e.yaml changed since the plan was made" in result.err


def test_plan_fails_when_coalesce_cannot_be_read_and_offline_is_the_way_to_skip_it(
    run_cli, write, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("COALESCE_TOKEN", "a-token-long-enough-to-look-for")
    url = f"http://127.0.0.1:{port}"
    spec = f'version: 1\nenvironmentID: "5"\ncoalesce: {{url: "{url}"}}\n'
    write({"specs/e.yaml": spec + 'runs: [{name: a, jobID: "1"}]\n'})

    online = run_cli("plan")
    assert online.code == 1, online.out
    assert "could not read environment 'e' from Coalesce" in online.err
    assert "--offline" in online.err
    assert run_cli("plan", "--offline").code == 0


def _removed(document: dict[str, object]) -> list[str]:
    runs = document["runs"]
    assert isinstance(runs, list)
    return sorted(f"{r['environment']}/{r['name']}" for r in runs if r["action"] == "removed")


def test_planning_one_file_says_nothing_of_the_other_environments(
    run_cli, write, secrets, tmp_path: Path
) -> None:
    prod = SPEC.replace('environmentID: "1"', 'environmentID: "2"')
    write({"specs/fin-dev.yaml": SPEC, "specs/fin-prod.yaml": prod})
    applied = run_cli("apply", "--auto-approve", "--no-wait")
    assert applied.code == 0, applied.err

    one_file = run_cli("plan", "specs/fin-dev.yaml", "--offline", "--format", "json")
    assert one_file.code == 0, one_file.err
    assert _removed(json.loads(one_file.out)) == []

    (tmp_path / "specs" / "fin-prod.yaml").unlink()
    again = json.loads(run_cli("plan", "specs/fin-dev.yaml", "--offline", "--format", "json").out)
    assert _removed(again) == []  # prod's spec was not planned: out of sight, not removed
    folder = json.loads(run_cli("plan", "specs", "--offline", "--format", "json").out)
    assert _removed(folder) == ["fin-prod/nothing", "fin-prod/stage"]  # gone from the folder


def test_env_needs_only_that_environments_secrets(
    run_cli, write, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = SPEC.replace("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PASSWORD_DEV")
    prod = SPEC.replace('environmentID: "1"', 'environmentID: "2"').replace(
        "SNOWFLAKE_PASSWORD", "SNOWFLAKE_PASSWORD_PROD"
    )
    write({"specs/dev.yaml": dev, "specs/prod.yaml": prod})
    monkeypatch.setenv("COALESCE_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD_PROD", "prod-only-password")  # dev's is not set

    planned = run_cli("plan", "--env", "prod", "--out", "prod-plan.json")
    assert planned.code == 0, planned.err
    assert "SNOWFLAKE_PASSWORD_DEV" not in planned.text
    applied = run_cli("apply", "prod-plan.json", "--auto-approve", "--no-wait")
    assert applied.code == 0, applied.err
    direct = run_cli("apply", "--env", "prod", "--auto-approve", "--no-wait")
    assert direct.code == 0, direct.err

    everything = run_cli("apply", "--auto-approve", "--no-wait")  # dev is in it now
    assert everything.code == 1 and "SNOWFLAKE_PASSWORD_DEV" in everything.err


def test_an_env_that_no_spec_names_is_an_error_with_a_suggestion(run_cli, write) -> None:
    write({"specs/prod.yaml": SPEC})
    result = run_cli("plan", "--offline", "--env", "prdo")
    assert result.code == 1
    assert "--env prdo: no spec names this environment" in result.err
    assert "did you mean 'prod'?" in result.err


def test_a_subgraph_selector_plans_as_not_checked_and_applies(run_cli, write, secrets) -> None:
    spec = SPEC.replace("'{ location: STG }'", "'{ subgraph: Sales }'")
    write({"specs/e.yaml": spec})
    planned = run_cli("plan", "--format", "json")
    assert planned.code == 0, planned.out + planned.err
    document = json.loads(planned.out)
    [stage] = [run for run in document["runs"] if run["name"] == "stage"]
    assert stage["selection"] is None  # Coalesce's node list says nothing of subgraphs
    codes = {w["code"] for w in stage["warnings"]}
    assert "not-checked" in codes and "empty-selection" not in codes

    applied = run_cli(
        "apply", "--auto-approve", "--run", "stage", "--format", "json", "--poll-interval", "0.05"
    )
    assert applied.code == 0, applied.err
    [run] = json.loads(applied.out)["runs"]
    assert run["status"] == "completed"


def test_a_saved_plan_goes_stale_only_when_its_own_environment_changes(
    run_cli, write, secrets, tmp_path: Path
) -> None:
    prod = SPEC.replace('environmentID: "1"', 'environmentID: "2"')
    write({"specs/dev.yaml": SPEC, "specs/prod.yaml": prod})
    assert run_cli("plan", "--env", "prod", "--out", "prod.json").code == 0
    assert run_cli("apply", "--env", "dev", "--auto-approve", "--no-wait").code == 0

    (tmp_path / "specs" / "dev.yaml").write_text(SPEC.replace("name: stage", "name: stg"))
    fresh = run_cli("apply", "prod.json", "--auto-approve", "--no-wait")
    assert fresh.code == 0, fresh.err  # dev's apply and dev's edit say nothing about prod

    assert run_cli("plan", "--env", "prod", "--out", "prod-2.json").code == 0
    assert run_cli("apply", "--env", "prod", "--auto-approve", "--no-wait").code == 0
    stale = run_cli("apply", "prod-2.json", "--auto-approve", "--no-wait")
    assert stale.code == 1
    assert "is stale" in stale.err and "another apply ran" in stale.err

    assert run_cli("plan", "--env", "prod", "--out", "prod-3.json").code == 0
    (tmp_path / "specs" / "prod.yaml").write_text(prod.replace("name: stage", "name: stg"))
    edited = run_cli("apply", "prod-3.json", "--auto-approve", "--no-wait")
    assert edited.code == 1 and "specs/prod.yaml changed since the plan was made" in edited.err


def test_an_online_plan_refuses_a_job_id_the_environment_does_not_have(
    run_cli, write, secrets
) -> None:
    head = SPEC.split("runs:\n")[0] + "runs:\n  - name: nightly\n"
    write({"specs/e.yaml": head + "    jobID: '9'\n"})

    refused = run_cli("plan")

    assert refused.code == 1, refused.out
    assert "error: jobID '9' is not a job of environment 'e'" in refused.out
    # The environment's jobs, as Coalesce lists them, to pick from.
    assert "1 'Staging load', 2 'Core model', 3 'Daily sales mart', 4 'Nightly'" in refused.out
    assert run_cli("plan", "--offline").code == 0  # offline, nothing is checked

    write({"specs/e.yaml": head + "    jobID: '4'\n"})
    assert run_cli("plan").code == 0
