"""Fuzzing the parsers and renderers: the only exception that escapes is our own.

Bounded for CI (a few hundred examples each); set RUNNER_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import SpecError
from runner.spec import RenderOptions, load_specs
from runner.spec.templates import Renderer
from runner.spec.yaml_source import Pos, YamlLoadError, parse_yaml

EXAMPLES = int(os.environ.get("RUNNER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

YAMLISH = st.text(alphabet=st.sampled_from(list("ab:-{}[]&*!|>'\"#%@`\n\t ,?01.~=<")), max_size=200)
TEMPLATEISH = st.text(
    alphabet=st.sampled_from(list("{}%#()[]'\"._|~+-*/ abcdefgnorstuvwx0123456789=<>!,")),
    max_size=80,
)


@FUZZ
@given(YAMLISH)
def test_yaml_loader_raises_only_its_own_error(text: str) -> None:
    try:
        parse_yaml(text, "f.yaml")
    except YamlLoadError as error:
        assert error.problem.path == "f.yaml"


@FUZZ
@given(st.one_of(TEMPLATEISH, st.text(max_size=60).map(lambda s: "{{ " + s + " }}")))
def test_template_renderer_reports_problems_and_never_raises(text: str) -> None:
    renderer = Renderer(RenderOptions(environ={"S": "v"}, variables={"x": "1"}))
    problems: list = []  # type: ignore[type-arg]
    result = renderer.render(
        text,
        Pos("f.yaml", 1, 1),
        spec_dir=Path("."),
        secrets_allowed=False,
        where="p",
        problems=problems,
    )
    assert isinstance(result, str)
    assert all(p.path == "f.yaml" for p in problems)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.text(max_size=12),
    st.sampled_from(["{ location: STG }", "{{ var('x') }}", "{{ secret('S') }}", "7", "KeyPair"]),
)
KEYS = st.sampled_from(
    [
        "version",
        "environmentID",
        "name",
        "runs",
        "batches",
        "jobID",
        "parallelism",
        "parameters",
        "includeNodesSelector",
        "userCredentials",
        "snowflakeAuthType",
        "snowflakePassword",
        "defaults",
        "coalesce",
        "url",
        "token",
        "timeout",
        "extends",
        "x",
    ]
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=25,
)


@FUZZ
@given(DOCUMENTS)
def test_spec_loading_raises_only_spec_errors(tmp_path_factory, document: object) -> None:
    import json

    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "e.yaml").write_text(json.dumps(document))  # JSON is YAML
    try:
        specs = load_specs([folder], options=RenderOptions(environ={"S": "v"}), environ={})
    except SpecError as error:
        assert error.problems
        return
    for run in specs.runs():  # the request builder ran on whatever validated
        assert run.request.environment_id.isdigit()
