"""Coalesce's text is untrusted: names, selectors and parameters full of YAML and Jinja
syntax, line breaks, control characters or sheer size still make a spec that validates
and asks exactly what the history shows, and no template in them ever runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.coalesce.models import DeployedJob
from runner.errors import RunnerError
from runner.importing import build_spec
from runner.secrets import KNOWN_SECRETS
from runner.spec.models import NAME_PATTERN

from ._fake import (
    LAST_CREDENTIALS,
    URL,
    FakeCoalesce,
    history,
    planned_requests,
    planned_requests_now,
    run,
    written,
)

NASTY = [
    "line one\nline two\r\nthree\rfour",
    "{{ secret('COALESCE_TOKEN') }}",
    "{{ now() }} and {% raw %}{{ x }}{% endraw %} and {# note #}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "}} {{ '{{' }} {%",
    "key: value\n- item\n? complex\n&anchor *alias !!python/object",
    "\"double\" 'single' \\back\\slash # not a comment",
    "\x00\x01\x07\x1b[31mred\x1b[0m\x7f\x85\u2028\u2029\ufeff",
    "yes",
    "2026-01-05",
    "007",
    "",
    "  padded  ",
    "trailing newline\n",
    "é 漢字 😀 \u202eevil",
]


async def test_hostile_parameters_come_back_exactly(tmp_path: Path) -> None:
    parameters = {f"p{index}": value for index, value in enumerate(NASTY)}
    parameters["<<"] = "a merge key's name"
    parameters["{{ key }}\n: x"] = "a name with syntax"
    item = run(1, includeNodesSelector="{ location: STG }", parameters=parameters)
    imported = await FakeCoalesce(runs=[item], jobs=[]).imported()
    planned = await planned_requests(written(imported), tmp_path)
    assert planned["adhoc-location-stg"]["parameters"] == parameters


async def test_hostile_job_names_make_valid_names_and_one_line_comments(tmp_path: Path) -> None:
    jobs = [
        {"id": str(index + 1), "name": name, "includeSelector": "{ location: STG }"}
        for index, name in enumerate([*NASTY, "x" * 100_000, "Nightly", "nightly"])
    ]
    imported = await FakeCoalesce(runs=[], jobs=jobs).imported()
    names = [r.name for r in imported.runs]
    assert len(set(names)) == len(names) == len(jobs)
    assert all(re.fullmatch(NAME_PATTERN, name) and len(name) <= 128 for name in names)
    assert names[-2:] == ["nightly", "nightly-2"]
    text = written(imported)
    assert len(text) < 20_000  # a huge name is cut in comments and names
    for line in text.splitlines():
        assert line.isascii() and line.isprintable(), line
    planned = await planned_requests(text, tmp_path)
    assert {request["runDetails"]["jobID"] for request in planned.values()} == {
        job["id"] for job in jobs
    }


async def test_hostile_selectors_are_kept_exactly(tmp_path: Path) -> None:
    include = '{ name: "{{ now() }}" }'
    exclude = '{ location: STG }\n  OR\t{ name: "%} {# x" }'
    item = run(1, includeNodesSelector=include, excludeNodesSelector=exclude)
    imported = await FakeCoalesce(runs=[item], jobs=[]).imported()
    planned = await planned_requests(written(imported), tmp_path)
    details = next(iter(planned.values()))["runDetails"]
    assert (details["includeNodesSelector"], details["excludeNodesSelector"]) == (
        include,
        exclude,
    )


async def test_hostile_environment_and_credential_text(tmp_path: Path) -> None:
    credentials = {
        "snowflakeAuthType": "Basic",
        "snowflakeUsername": "svc{{ now() }}\n",
        "snowflakeWarehouse": "WH\x00",
        "snowflakeRole": "{% raw %}",
    }
    fake = FakeCoalesce(runs=[run(1, credentials=credentials)], jobs=[], name="\n{{ x }}\x1b")
    imported = await fake.imported()
    assert imported.name == "x"
    text = written(imported)
    planned = await planned_requests(text, tmp_path)
    assert planned == {"adhoc-all-nodes": {"runDetails": {"environmentID": "12"}}}
    assert {**credentials, "snowflakePassword": "(secret)"} == LAST_CREDENTIALS


def test_a_nameless_environment_and_job_get_names_from_their_ids() -> None:
    imported = build_spec(history(jobs=(DeployedJob(id="4", name="***"),)), url=URL, name=None)
    assert imported.name == "production"
    assert [r.name for r in imported.runs] == ["job-4"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    parameters=st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=4),
    include=st.sampled_from(["{ location: STG }", '{ name: "{{ x }}" }+', "{ * }"]),
)
def test_any_parameter_text_survives_the_round_trip(
    tmp_path: Path, parameters: dict[str, str], include: str
) -> None:
    item = run(1, includeNodesSelector=include, parameters=parameters)
    imported = build_spec(history(item), url=URL)
    planned = planned_requests_now(written(imported), tmp_path)
    request = next(iter(planned.values()))
    assert request.get("parameters", {}) == parameters
    assert request["runDetails"]["includeNodesSelector"] == include


SPELLED = "9f3a7c1e5b2d8a64"  # a canary secret


@pytest.mark.parametrize(
    "job_name", ["9f3a7c1e\u6f225b2d8a64", "9F3A7C1E\u4e005B2D8A64", "x-9f3a7c1e-5b2d-8a64"]
)
def test_a_name_made_of_coalesce_text_never_spells_a_secret(job_name: str) -> None:
    """A secret broken by a character the name drops (or in other case, or split by
    dashes) is whole again in the name: the name is checked, not only the text."""
    KNOWN_SECRETS.register(SPELLED)
    selector = "{ location: " + job_name + " }"
    imported = build_spec(
        history(run(1, includeNodesSelector=selector), jobs=(DeployedJob(id="4", name=job_name),)),
        url=URL,
        name=None,
    )
    names = [r.name for r in imported.runs]
    assert "job-4" in names
    assert not [n for n in names if "9f3a" in n or "8a64" in n], names
    assert SPELLED not in written(imported).lower()


@pytest.mark.parametrize("key", ["snowflakePwd", "pwd", "snowflakeOAuthCode", "credential"])
def test_any_credential_coalesce_returns_beyond_the_four_it_shows_is_a_secret(key: str) -> None:
    leaked = "Leaked-4c1d9e7f2a"
    credentials = {"snowflakeAuthType": "Basic", "snowflakeUsername": "SVC", key: leaked}
    imported = build_spec(
        history(
            run(
                1,
                includeNodesSelector="{ location: STG }",
                credentials=credentials,
                parameters={"note": leaked},
            )
        ),
        url=URL,
        name=None,
    )
    assert leaked not in written(imported)
    assert [item.run_id for item in imported.left_out] == [1]  # its parameter holds it


def test_job_ids_in_other_scripts_digits_are_not_ids() -> None:
    jobs = (DeployedJob(id="\u00b2", name="two"), DeployedJob(id="\u0661\u0662", name="twelve"))
    imported = build_spec(
        history(run(1, jobID="\u0661\u0662", jobName="twelve"), jobs=jobs), url=URL, name=None
    )
    assert all(r.request.job_id is None for r in imported.runs)
    assert "\\u0661" not in written(imported) and "\u0661" not in written(imported)


def test_a_spec_too_large_to_load_is_not_written() -> None:
    # Each emoji is written as an 11-character escape (the value holds "{{"): 1.1 MB.
    huge = {"a": "{{" + "\U0001f600" * 50_000, "b": "{{" + "\U0001f600" * 50_000}
    adhoc = run(1, includeNodesSelector="{ location: STG }", parameters=huge)
    imported = build_spec(history(adhoc), url=URL, name=None)
    assert [r.name for r in imported.runs] == ["adhoc-location-stg"]
    with pytest.raises(RunnerError) as caught:
        written(imported)
    assert "more than the 1,048,576 a spec file may hold, so it was not written" in str(
        caught.value
    )
