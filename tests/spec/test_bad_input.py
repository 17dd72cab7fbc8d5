"""Every kind of bad spec gets exit 1 and one precise ``file:line:col: message``, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

HEAD = (
    'version: 1\nenvironmentID: "12"\n'
    'coalesce: {url: "sim://", token: "{{ secret(\'COALESCE_TOK\') }}"}\n'
)
#: One run; it asks for every node, as a run with no job and no selector must.
RUNS = "runs:\n  - name: a\n    allNodes: true\n"
#: One run, for a case that gives it a job.
RUNS_BARE = "runs:\n  - name: a\n"

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"

CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "malformed yaml",
        {"env.yaml": HEAD + "runs:\n  - name: [a\n"},
        "env.yaml:6:1: not valid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence)",
    ),
    (
        "alias bomb",
        {
            "env.yaml": HEAD
            + 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefg", "bcdefgh", strict=True)
            )
        },
        "env.yaml:4:20: the document expands to more than 200,000 values (an alias bomb?); "
        "runner refuses to expand it",
    ),
    (
        "not a mapping",
        {"env.yaml": "- version: 1\n- runs: []\n"},
        "env.yaml:1:1: a spec must be a mapping of keys (version, environmentID, runs, ...), "
        "not a list",
    ),
    (
        "unknown key with suggestion",
        {"env.yaml": HEAD + RUNS + "    paralelism: 4\n"},
        "env.yaml:7:5: runs[0]: unknown key 'paralelism' (did you mean 'parallelism'?)",
    ),
    (
        "unknown top-level key",
        {"env.yaml": HEAD + RUNS + "enviromentName: x\n"},
        "env.yaml:7:1: unknown key 'enviromentName' (did you mean 'environmentID'?)",
    ),
    (
        "wrong type",
        {"env.yaml": HEAD + RUNS + "    allowEmpty: maybe\n"},
        "env.yaml:7:17: runs[0].allowEmpty: must be true or false, unquoted (got 'maybe'): "
        "text is not read as a boolean",
    ),
    *(
        (
            f"quoted boolean {text}",
            {"env.yaml": HEAD + RUNS + f"    forceIgnoreEnvironmentStatus: {text}\n"},
            f"env.yaml:7:35: runs[0].forceIgnoreEnvironmentStatus: must be true or false, "
            f"unquoted (got {text.strip(chr(34))!r}): text is not read as a boolean",
        )
        for text in ('"yes"', '"no"', '"on"', '"1"', '"true"', "yes", "off")
    ),
    (
        "parallelism 0",
        {"env.yaml": HEAD + RUNS + "    parallelism: 0\n"},
        "env.yaml:7:18: runs[0].parallelism: must be between 1 and 1024 (got 0)",
    ),
    (
        "parallelism 5000",
        {"env.yaml": HEAD + RUNS + "    parallelism: 5000\n"},
        "env.yaml:7:18: runs[0].parallelism: must be between 1 and 1024 (got 5000)",
    ),
    (
        "non-digit jobID",
        {"env.yaml": HEAD + RUNS_BARE + "    jobID: nightly\n"},
        'env.yaml:6:12: runs[0].jobID: must be a string of digits such as "12" '
        "(Coalesce IDs are numbers)",
    ),
    (
        "list as a parameter value",
        {"env.yaml": HEAD + RUNS + "    parameters: {regions: [emea, apac]}\n"},
        "env.yaml:7:27: runs[0].parameters.regions: a parameter value must be text, a number "
        "or a boolean; this one is a list. Coalesce parameters are a flat map of strings: write "
        "the value as a string (e.g. JSON text in quotes) if you need structure",
    ),
    (
        "whole environment not asked for",
        {"env.yaml": HEAD + RUNS_BARE + "    parallelism: 4\n"},
        "env.yaml:5:5: run 'a' names no job and no selector, so it would refresh every node "
        "of the environment; give it a job, a jobID or an includeNodesSelector, or set allNodes: "
        "true if the whole environment is meant",
    ),
    (
        "allNodes beside a job",
        {"env.yaml": HEAD + RUNS + '    jobID: "7"\n'},
        "env.yaml:6:5: run 'a' sets allNodes: true and jobID: allNodes means every node, so "
        "remove one of them",
    ),
    (
        "duplicate run name",
        {
            "env.yaml": HEAD
            + RUNS
            + "  - name: b\n    allNodes: true\n  - name: a\n    allNodes: true\n"
        },
        "env.yaml:9:11: duplicate run name 'a' (first used at line 5); run names must be "
        "unique within a spec",
    ),
    (
        "both runs and batches",
        {
            "env.yaml": HEAD
            + RUNS
            + "batches:\n  - name: x\n    runs: [{name: b, allNodes: true}]\n"
        },
        "env.yaml:7:1: a spec has either runs: or batches:, not both; move the runs into a batch",
    ),
    (
        "literal password",
        {
            "env.yaml": HEAD
            + "userCredentials:\n  snowflakeUsername: u\n  snowflakePassword: hunter2\n"
            + RUNS
        },
        "env.yaml:6:22: userCredentials.snowflakePassword: must come from secret('ENV_VAR') or "
        "secret_file('path'), not a literal value: specs are committed to git",
    ),
    (
        "literal token",
        {"env.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {token: abc123}\n' + RUNS},
        "env.yaml:3:19: coalesce.token: must come from secret('ENV_VAR') or secret_file('path'), "
        "not a literal value: specs are committed to git",
    ),
    (
        "secret in a parameter",
        {"env.yaml": HEAD + RUNS + "    parameters: {pw: \"{{ secret('COALESCE_TOK') }}\"}\n"},
        "env.yaml:7:22: a secret cannot be used in runs[0].parameters.pw: Coalesce keeps it in "
        "run history, where anyone with access would read it. Secrets may appear only in "
        "coalesce.token and under userCredentials",
    ),
    (
        "template syntax error",
        {"env.yaml": HEAD + RUNS + '    parameters: {d: "{{ now( }}"}\n'},
        "env.yaml:7:21: template syntax error: unexpected '}'",
    ),
    (
        "undefined variable",
        {"env.yaml": HEAD + RUNS + "    parameters: {d: \"{{ var('region') }}\"}\n"},
        "env.yaml:7:21: variable 'region' is not set: pass --var region=VALUE or set the "
        "environment variable RUNNER_VAR_region, or give a default: var('region', default='...')",
    ),
    (
        "undefined name",
        {"env.yaml": HEAD + RUNS + '    parameters: {d: "{{ region }}"}\n'},
        "env.yaml:7:21: undefined name 'region' in template: templates can only use var(), "
        "secret(), secret_file() and now(); for a value from --var write var('region')",
    ),
    (
        "sandbox escape",
        {"env.yaml": HEAD + RUNS + "    parameters: {d: \"{{ ''.__class__.__mro__ }}\"}\n"},
        "env.yaml:7:21: template not allowed: access to attribute '__class__' of 'str' object "
        "is unsafe. Templates may only call var(), secret(), secret_file() and now(), and use "
        "plain values",
    ),
    (
        "extends cycle",
        {
            "env.yaml": HEAD + RUNS + "extends: _a.yaml\n",
            "_a.yaml": "extends: _b.yaml\n",
            "_b.yaml": "extends: _a.yaml\n",
        },
        "_b.yaml:1:10: extends makes a cycle: env.yaml -> _a.yaml -> _b.yaml -> _a.yaml",
    ),
    (
        "missing base",
        {"env.yaml": HEAD + RUNS + "extends: _nope.yaml\n"},
        "env.yaml:7:10: extends: base file '_nope.yaml' not found (looked for _nope.yaml)",
    ),
    (
        "non-PEM key",
        {
            "env.yaml": HEAD
            + "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
            + "  snowflakeKeyPairKey: \"{{ secret_file('key.der') }}\"\n"
            + RUNS,
            "key.der": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
        },
        "env.yaml:7:24: userCredentials.snowflakeKeyPairKey: is not a PEM private key: it needs "
        "the '-----BEGIN PRIVATE KEY-----' header and the matching '-----END ...-----' footer "
        "(convert a DER key with 'openssl pkcs8 -topk8 -inform DER -outform PEM')",
    ),
    (
        "unreadable secret_file",
        {
            "env.yaml": HEAD
            + "userCredentials:\n  snowflakeAuthType: KeyPair\n  snowflakeUsername: u\n"
            + "  snowflakeKeyPairKey: \"{{ secret_file('keys') }}\"\n"
            + RUNS,
            "keys/readme": "a folder, not a key",
        },
        "env.yaml:7:24: secret_file('keys'): {tmp}/keys is not a regular file; point it at "
        "the key file",
    ),
    (
        "auth type case",
        {"env.yaml": HEAD + "userCredentials:\n  snowflakeAuthType: keypair\n" + RUNS},
        "env.yaml:5:22: userCredentials.snowflakeAuthType: must be 'Basic', 'KeyPair' or "
        "'OAuth' (got 'keypair'); did you mean 'KeyPair'? (case-sensitive)",
    ),
    (
        "basic without password",
        {"env.yaml": HEAD + "userCredentials:\n  snowflakeUsername: u\n" + RUNS},
        "env.yaml:5:3: userCredentials: snowflakeAuthType Basic needs snowflakePassword",
    ),
    (
        "missing environmentID",
        {"env.yaml": "version: 1\n" + RUNS},
        "env.yaml:1:1: missing required key 'environmentID'",
    ),
    (
        "url to a foreign host",
        {
            "env.yaml": 'version: 1\nenvironmentID: "1"\ncoalesce: {url: "https://evil.example.com"}\n'
            + RUNS
        },
        "env.yaml:3:17: coalesce.url: ",
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_is_one_precise_message(run_cli, write, files, expected, tmp_path: Path) -> None:
    write(files)
    result = run_cli("validate", "env.yaml")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if ": warning: " not in line]
    assert errors[0].startswith(expected.replace("{tmp}", str(tmp_path)))
    assert errors[-1].startswith("1 error in 1 file")
    assert "Traceback" not in result.text


def test_every_problem_in_every_file_in_one_pass(run_cli, write) -> None:
    write(
        {
            "a.yaml": HEAD + RUNS_BARE + "    parallelism: 0\n    jobID: x\n",
            "b.yaml": HEAD + "runs:\n  - nam: b\n    allNodes: true\n",
        }
    )
    result = run_cli("validate", ".")
    assert result.code == 1
    lines = result.err.splitlines()
    assert [line.split(": ")[0] for line in lines[:-1] if "warning" not in line] == [
        "a.yaml:6:18",
        "a.yaml:7:12",
        "b.yaml:5:5",
        "b.yaml:5:5",
    ]
    assert lines[-1] == "4 errors in 2 files"


HOSTILE_TEMPLATES = [
    ("{{ '{:>999999999}'.format(1) }}", "access to attribute 'format' of 'str' object is unsafe"),
    ("{{ 'x'.center(10**9) }}", "access to attribute 'center' of 'str' object is unsafe"),
    ("{{ '%999999999s' % 1 }}", "a %-format has a width or precision of 999999999"),
    ("{{ 'ab' * 1000000 }}", "repeating a value 1000000 times would build about 2,000,000"),
    ("{{ 9 ** 99999 }}", "exponent 99999 is larger than 256"),
    (
        "{% for a in 'xy' %}{% for b in 'xy' %}z{% endfor %}{% endfor %}",
        "'for' statements are not allowed",
    ),
    ("{% macro m() %}{% endmacro %}", "'macro' statements are not allowed"),
    ("{{ now().__class__.__init__.__globals__ }}", "template not allowed: access to attribute"),
    ("{{ var.__globals__ }}", "access to attribute '__globals__'"),
    ("{{ cycler.__init__.__globals__.os }}", "template not allowed: access to attribute"),
]


@pytest.mark.parametrize(("template", "expected"), HOSTILE_TEMPLATES)
def test_hostile_templates_are_refused_quickly(run_cli, write, template, expected) -> None:
    write({"env.yaml": HEAD + RUNS + f'    parameters: {{p: "{template}"}}\n'})
    result = run_cli("validate", "env.yaml")
    assert result.code == 1
    assert expected in result.err
    assert "Traceback" not in result.err


def test_every_problem_is_reported_in_one_pass(run_cli, write) -> None:
    write(
        {
            "env.yaml": HEAD
            + "runs:\n  - name: a\n    parallelism: lots\n  - name: a\n"
            + "batches:\n  - name: b\n    runs:\n      - name: c\n"
            + "        includeNodesSelector: '{ location: STG'\n"
        }
    )
    result = run_cli("validate", "env.yaml")
    assert result.code == 1
    for expected in (
        "runs[0].parallelism: must be",  # a type error ...
        "duplicate run name 'a'",  # ... does not hide the rules across fields
        "a spec has either runs: or batches:, not both",
        "includeNodesSelector: invalid selector",
    ):
        assert expected in result.err, result.err
