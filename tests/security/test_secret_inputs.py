"""Where secrets may come from, what is said about weak ones, and templates that would
build huge values: each refused or warned about at validate, with file:line:col."""

from __future__ import annotations

import pytest

from runner.secrets import Secret

HEAD = 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "sim://"}\n'
RUNS = "runs:\n  - name: a\n    allNodes: true\n"


def _password_spec(template: str) -> str:
    return (
        HEAD
        + "userCredentials:\n  snowflakeAuthType: Basic\n  snowflakeUsername: u\n"
        + f'  snowflakePassword: "{template}"\n'
        + RUNS
    )


# -- the environment variables secret() may read -----------------------------------------


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "HOME", "PW"])
def test_secret_from_a_variable_that_is_not_allowed_is_an_error(
    run_cli, write, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "CANARY-not-allowed-3f9e")
    write({"e.yaml": _password_spec(f"{{{{ secret('{name}') }}}}")})
    result = run_cli("validate", "e.yaml")
    assert result.code == 1
    assert f"e.yaml:7:22: secret('{name}') reads an environment variable" in result.err
    assert "RUNNER_SECRET_ENV" in result.err and f"RUNNER_SECRET_{name}" in result.err
    assert "CANARY-not-allowed-3f9e" not in result.text


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("COALESCE_TOKEN", ""),
        ("SNOWFLAKE_PASSWORD", ""),
        ("RUNNER_SECRET_DB", ""),
        ("DB_PASSWORD", "DB_PASSWORD"),
        ("DB_PASSWORD", "OTHER, DB_PASSWORD"),
        ("VAULT_DB_PASSWORD", "VAULT_*"),
    ],
)
def test_secret_from_an_allowed_variable_is_read(
    run_cli, write, monkeypatch: pytest.MonkeyPatch, name: str, allowed: str
) -> None:
    monkeypatch.setenv("COALESCE_TOKEN", "a-long-random-token-value-51ab")
    monkeypatch.setenv(name, "a-long-random-secret-value-8d2c")
    monkeypatch.setenv("RUNNER_SECRET_ENV", allowed)
    write({"e.yaml": _password_spec(f"{{{{ secret('{name}') }}}}")})
    result = run_cli("validate", "e.yaml")
    assert result.code == 0, result.err
    assert "weak" not in result.err


@pytest.mark.parametrize("allowed", ["VAULT_", "*", "DB_PASSWORD_EXTRA", " "])
def test_the_allow_list_matches_names_or_prefixes_ending_in_a_star_only(
    run_cli, write, monkeypatch: pytest.MonkeyPatch, allowed: str
) -> None:
    monkeypatch.setenv("VAULT_DB_PASSWORD", "a-long-random-secret-value-8d2c")
    monkeypatch.setenv("RUNNER_SECRET_ENV", allowed)
    write({"e.yaml": _password_spec("{{ secret('VAULT_DB_PASSWORD') }}")})
    assert run_cli("validate", "e.yaml").code == 1


def test_the_example_specs_still_validate(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "specs"
    monkeypatch.chdir(examples.parent)
    result = run_cli("validate", "specs")
    assert result.code == 0, result.err
    assert "reads an environment variable" not in result.err


# -- weak secrets ------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["x", "1234", "12345678901", "password", "Stop", "hunter2"])
def test_a_weak_secret_is_warned_about_without_showing_it(
    run_cli, write, monkeypatch: pytest.MonkeyPatch, weak: str
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", weak)
    write({"e.yaml": _password_spec("{{ secret('SNOWFLAKE_PASSWORD') }}")})
    validated = run_cli("validate", "e.yaml")
    assert validated.code == 0, validated.err
    warning = "the secret from the environment variable SNOWFLAKE_PASSWORD is weak"
    assert f"e.yaml:7:22: warning: {warning}" in validated.err
    planned = run_cli("plan", "e.yaml")
    assert planned.code == 0 and warning in planned.text
    if len(weak) >= 4:  # (a shorter one is in ordinary words)
        for result in (validated, planned):
            assert weak not in result.text.replace("SNOWFLAKE_PASSWORD", "")


def test_a_long_random_secret_gets_no_warning(
    run_cli, write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "q8-Vt3z!mR0x")
    write({"e.yaml": _password_spec("{{ secret('SNOWFLAKE_PASSWORD') }}")})
    result = run_cli("validate", "e.yaml")
    assert result.code == 0 and "weak" not in result.err


# -- secret_file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "sent"),
    [
        ("s3cret-from-file\n", "s3cret-from-file"),
        ("s3cret-from-file\r\n", "s3cret-from-file"),
        ("s3cret-from-file\n\n", "s3cret-from-file\n"),  # exactly one newline goes
        ("s3cret-from-file", "s3cret-from-file"),
        ("  s3cret-from-file  \n", "  s3cret-from-file  "),
    ],
)
def test_secret_file_loses_exactly_one_trailing_newline(write, content: str, sent: str) -> None:
    from runner.spec import RenderOptions, load_specs

    root = write({"e.yaml": _password_spec("{{ secret_file('pw.txt') }}")})
    (root / "pw.txt").write_bytes(content.encode())
    specs = load_specs([root / "e.yaml"], options=RenderOptions(environ={}), environ={})
    [env] = specs.environments
    credentials = next(iter(env.runs())).request.credentials
    assert credentials is not None
    password = credentials["snowflakePassword"]
    assert isinstance(password, Secret) and password.reveal() == sent


# -- templates that would build huge values ------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'a'|center(999999999) }}", "center() would build about 999,999,999 characters"),
        ("{{ 'a b'|indent(999999999) }}", "indent() would build about"),
        ("{{ '%999999999s'|format(1) }}", "format() has a width or precision of 999999999"),
        ("{{ '%.99999f' % 1 }}", "a %-format has a width or precision of 99999"),
        ("{{ '%*s' % (99999999, 1) }}", "a %-format has a width or precision of *"),
        ("{{ 'a b c d e f g'|wordwrap(1, wrapstring='x' * 9000) }}", "wordwrap() would build"),
        ("{{ ('a' * 9000)|replace('a', 'b' * 9000) }}", "replace() would build about 81,009,000"),
        ("{{ ''|replace('', 'y' * 9999, 99999) }}", None),  # one match: allowed
        ("{{ 'abc'|truncate(999999999) }}", "truncate() would build"),
        ("{{ (10 ** 256) ** 256 }}", "a power would build"),
        ("{{ 9 ** 99999 }}", "the exponent 99999 is larger than 256"),
        ("{{ ['a' * 9999] * 9999 }}", "repeating a value 9999 times"),
        ("{{ 'a' * 9999 * 9999 }}", "repeating a value 9999 times"),
        ("{% set a = 'x' * 9000 %}{{ a ~ a }}", "'assign' statements are not allowed"),
        ("{{ [1]|batch(999999999, 'x')|list }}", "batch() would build about 999,999,999"),
        ("{{ [1]|slice(999999999)|list }}", "slice() would build about 999,999,999"),
    ],
)
def test_templates_that_would_build_huge_values_are_refused_before_they_do(
    run_cli, write, template: str, expected: str | None
) -> None:
    write({"e.yaml": HEAD + RUNS + f'    parameters: {{p: "{template}"}}\n'})
    result = run_cli("validate", "e.yaml")  # refused before allocating, not after
    if expected is None:
        assert result.code == 0, result.err
        return
    assert result.code == 1
    assert "e.yaml:7:21: template" in result.err and expected in result.err, result.err
    assert "Traceback" not in result.err


def test_small_values_built_by_the_same_filters_are_fine(run_cli, write) -> None:
    template = (
        "{{ 'ab'|center(6) }}{{ 'x'|indent(2) }}{{ '%05d'|format(7) }}{{ 'a b'|wordwrap(1) }}"
        "{{ 'aa'|replace('a', 'b') }}{{ 'abcdef'|truncate(5, leeway=0) }}{{ 2 ** 8 }}"
        "{{ [1, 2, 3]|batch(2, 0)|list }}{{ [1, 2, 3]|slice(2)|list }}"
    )
    write({"e.yaml": HEAD + RUNS + f'    parameters: {{p: "{template}"}}\n'})
    result = run_cli("validate", "e.yaml")
    assert result.code == 0, result.err
