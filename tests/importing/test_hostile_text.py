"""Coalesce's text is untrusted: names, selectors and parameters full of YAML and Jinja
syntax, line breaks, control characters or sheer size still make a spec that validates
and asks exactly what the history shows, and no template in them ever runs."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.coalesce.models import DeployedJob
from runner.importing import build_spec
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
