"""Loading specs: extends, defaults, runs vs batches, request bodies, and the examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.secrets import Secret, reveal_all
from runner.spec import RenderOptions, load_specs

REPO = Path(__file__).resolve().parents[2]
PEM = (
    "-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\r\n"
    "-----END PRIVATE KEY-----\r\n"
)


def load(tmp: Path, environ: dict[str, str] | None = None, **kw: str):
    env = {"COALESCE_TOKEN": "tok-1234567", **(environ or {})}
    options = RenderOptions(environ=env, variables=kw, require_secrets=True)
    return load_specs([tmp], options=options, environ=env)


def test_extends_merges_maps_replaces_lists_and_run_keys_win(write) -> None:
    tmp = write(
        {
            "_base.yaml": (
                "version: 1\ncoalesce: {url: 'sim://'}\n"
                "defaults:\n  parallelism: 16\n  allNodes: true\n"
                "  parameters: {region: emea, tier: gold}\n"
                "runs:\n  - name: from-base\n"
            ),
            "prod.yaml": (
                "extends: _base.yaml\nenvironmentID: 12\n"
                "defaults:\n  parameters: {tier: silver}\n"
                "runs:\n  - name: a\n    parameters: {tier: bronze, day: 3}\n  - name: b\n"
                "    parallelism: 2\n"
            ),
        }
    )
    specs = load(tmp)
    [env] = specs.environments
    assert env.name == "prod" and env.environment_id == "12" and env.url == "sim://"
    [batch] = env.batches
    assert batch.name == "default" and [r.name for r in batch.runs] == ["a", "b"]
    a, b = batch.runs
    assert a.request.body() == {
        "runDetails": {"environmentID": "12", "parallelism": 16},
        "parameters": {"region": "emea", "tier": "bronze", "day": "3"},
    }
    assert b.request.body()["runDetails"]["parallelism"] == 2
    assert b.request.body()["parameters"] == {"region": "emea", "tier": "silver"}
    assert set(specs.files) == {"_base.yaml", "prod.yaml"}


def test_request_is_the_exact_startrun_body(write) -> None:
    tmp = write(
        {
            "key.p8": PEM,
            "prod.yaml": (
                'version: 1\nenvironmentID: "4"\ncoalesce: {url: "sim://"}\n'
                "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: SVC\n"
                "  snowflakeKeyPairKey: \"{{ secret_file('key.p8') }}\"\n"
                "  snowflakeKeyPairPass: \"{{ secret('SNOWFLAKE_KEY_PASS') }}\"\n"
                "  snowflakeRole: TRANSFORMER\n"
                "defaults: {forceIgnoreEnvironmentStatus: false}\n"
                "batches:\n  - name: one\n    runs:\n"
                "      - name: job\n        jobID: 7\n"
                "        excludeNodesSelector: '{ nodeType: View }'\n"
                "        parameters: {full: true, n: 1.5}\n"
                "      - name: forced\n        forceIgnoreEnvironmentStatus: true\n"
                "        includeNodesSelector: '{ location: STG }+'\n"
            ),
        }
    )
    specs = load(tmp, {"SNOWFLAKE_KEY_PASS": "pass-9876"})
    job, forced = specs.environments[0].runs()
    sent = reveal_all(job.request.body())
    assert sent == {
        "runDetails": {
            "environmentID": "4",
            "jobID": "7",
            "excludeNodesSelector": "{ nodeType: View }",
            "forceIgnoreEnvironmentStatus": False,
            "forceIgnoreWorkspaceStatus": False,
        },
        "userCredentials": {
            "snowflakeAuthType": "KeyPair",
            "snowflakeUsername": "SVC",
            "snowflakeKeyPairKey": PEM.replace("\r\n", "\n").strip(),
            "snowflakeKeyPairPass": "pass-9876",
            "snowflakeRole": "TRANSFORMER",
        },
        "parameters": {"full": "true", "n": "1.5"},
    }
    details = forced.request.body()["runDetails"]
    assert details["forceIgnoreEnvironmentStatus"] is True
    assert details["forceIgnoreWorkspaceStatus"] is True
    shown = json.dumps(forced.request.redacted())
    assert '"snowflakeKeyPairKey": "(secret)"' in shown and "pass-9876" not in shown


def test_force_flag_unset_sends_neither_key(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    [run] = load(tmp).runs()
    assert run.request.body() == {"runDetails": {"environmentID": "1"}}


@pytest.mark.parametrize("given", ["true", "false", "True"])
def test_a_flag_rendered_by_a_template_is_the_boolean(write, given: str) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\nruns:\n'
            "  - {name: a, allNodes: true, forceIgnoreEnvironmentStatus: \"{{ var('force') }}\"}\n"
        }
    )
    [run] = load(tmp, force=given).runs()
    assert run.request.body()["runDetails"]["forceIgnoreEnvironmentStatus"] is (
        given.lower() == "true"
    )


def test_oauth_sends_only_the_auth_type(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
            "userCredentials: {snowflakeAuthType: OAuth}\nruns: [{name: a, allNodes: true}]\n"
        }
    )
    [run] = load(tmp).runs()
    assert run.request.body()["userCredentials"] == {"snowflakeAuthType": "OAuth"}


def test_templates_see_vars_env_vars_and_a_frozen_now(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\nruns:\n'
            "  - name: a\n    allNodes: true\n"
            "    parameters:\n      region: \"{{ var('region') }}\"\n"
            "      tier: \"{{ var('tier', default='gold') }}\"\n"
            "      day: \"{{ now().strftime('%Y') }}\"\n"
            "      job: \"{{ var('job') }}\"\n"
        }
    )
    [run] = load(tmp, {"RUNNER_VAR_job": "from-env"}, region="apac").runs()
    params = run.request.body()["parameters"]
    assert params["region"] == "apac" and params["tier"] == "gold" and params["job"] == "from-env"
    assert params["day"].isdigit() and len(params["day"]) == 4


def test_secret_glued_to_text_is_a_secret_as_a_whole(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\n'
            "coalesce: {url: 'sim://', token: \"pre-{{ secret('COALESCE_T') }}\"}\n"
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    [env] = load(tmp, {"COALESCE_T": "abcdef"}).environments
    assert isinstance(env.token, Secret) and env.token.reveal() == "pre-abcdef"
    assert str(env.token) == "(secret)"


def test_missing_secret_is_an_error_when_secrets_are_required(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
            "runs: [{name: a, allNodes: true}]\n"
        }
    )
    with pytest.raises(SpecError) as caught:
        load_specs([tmp], options=RenderOptions(environ={}, require_secrets=True), environ={})
    assert str(caught.value) == (
        "e.yaml:3:1: secret not available: the environment variable COALESCE_TOKEN is not set; "
        "set it before applying"
    )


def test_duplicate_environment_names_name_both_files(write) -> None:
    body = (
        'version: 1\nenvironmentID: "1"\nname: prod\ncoalesce: {url: "sim://"}\n'
        "runs: [{name: a, allNodes: true}]\n"
    )
    tmp = write({"a.yaml": body, "b.yaml": body})
    with pytest.raises(SpecError) as caught:
        load(tmp)
    assert str(caught.value) == (
        "b.yaml:3:7: environment name 'prod' is also used by a.yaml; names must be unique "
        "(set name: in one of them)"
    )


def test_selector_errors_point_inside_the_selector(write) -> None:
    tmp = write(
        {
            "e.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\nruns:\n'
            '  - name: a\n    includeNodesSelector: "{ locaton: STG }"\n'
        }
    )
    with pytest.raises(SpecError) as caught:
        load(tmp)
    message = str(caught.value)
    assert message.startswith("e.yaml:6:30: includeNodesSelector: invalid selector: ")
    assert "location" in message


def test_base_files_are_not_environments(write) -> None:
    tmp = write(
        {
            "_base.yaml": "version: 1\ncoalesce: {url: 'sim://'}\n",
            "e.yaml": 'extends: _base.yaml\nenvironmentID: "1"\n'
            "runs: [{name: a, allNodes: true}]\n",
        }
    )
    assert [e.name for e in load(tmp).environments] == ["e"]


def test_example_specs_are_valid(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = run_cli("validate", "specs")
    assert result.code == 0, result.err
    assert result.out == "5 files valid: 4 environments, 12 runs, 6 warnings\n"


def test_committed_schema_is_current() -> None:
    from runner.commands.schema import spec_schema_text

    committed = (REPO / "specs" / "spec.schema.json").read_text()
    assert committed == spec_schema_text(), "run: runner schema > specs/spec.schema.json"


def test_example_specs_point_editors_at_the_schema() -> None:
    for spec in (REPO / "specs").glob("*.yaml"):
        first = spec.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=./spec.schema.json", spec.name
