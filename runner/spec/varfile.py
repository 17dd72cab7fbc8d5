"""``--var-file FILE``: a YAML map of variables for ``var()``, as Terraform's ``-var-file``.

A variable file is a flat map of names to scalar values:

    snowflake_user: LOADER
    region: emea
    batch_size: 500        # a number is taken as written: "500"

Values are taken exactly as written in the file (``1.10`` stays ``1.10``, ``007`` stays
``007``); ``true``/``false`` become ``true``/``false``. Lists, maps and empty values are
errors at their ``file:line:col``. Variables are plain values shown in plans: a secret
belongs in ``secret()``, never in a variable file.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import nodes

from runner.errors import Problem, SpecError
from runner.spec.yaml_source import (
    _YAML,
    YamlLoadError,
    parse_yaml_bytes,
    read_spec_bytes,
)

_NULL = "tag:yaml.org,2002:null"


def read_var_file(path: str) -> dict[str, str]:
    """The variables of one file, in the order written; every problem is reported at once
    as a :class:`SpecError` (``file:line:col: message``)."""
    try:
        raw = read_spec_bytes(Path(path), path)
        # The located parse checks what a spec load checks (syntax, size, alias bombs,
        # depth, duplicate keys) and gives each problem its place.
        tree = parse_yaml_bytes(raw, path)
    except YamlLoadError as error:
        raise SpecError([_for_var_file(error.problem)]) from None
    if tree is None:
        return {}
    if not tree.is_map:
        raise SpecError(
            [tree.pos.problem("a variable file is a map of names to values, e.g. 'region: emea'")]
        )
    # Compose once more for the scalars' text as written (the located tree keeps values
    # converted as a spec reads them: 1.10 would become 1.1).
    root = _YAML.compose(raw.decode("utf-8"))
    written = {
        str(key.value): value
        for key, value in root.value
        if isinstance(key, nodes.ScalarNode) and isinstance(value, nodes.ScalarNode)
    }
    variables: dict[str, str] = {}
    problems: list[Problem] = []
    assert tree.entries is not None
    for name, (key_pos, node) in tree.entries.items():
        scalar = written.get(name)
        if not name.strip() or "=" in name:
            problems.append(key_pos.problem(f"'{name}' is not a variable name"))
        elif node.is_map or node.is_list:
            kind = "a map" if node.is_map else "a list"
            problems.append(
                node.pos.problem(
                    f"variable '{name}' is {kind}; a variable is one value "
                    "(a string, number or boolean)"
                )
            )
        elif _is_empty(scalar, node.value):
            problems.append(
                key_pos.problem(
                    f"variable '{name}' has no value; give one (\"\" for an empty string) "
                    "or remove the line"
                )
            )
        elif isinstance(node.value, bool):
            variables[name] = "true" if node.value else "false"
        else:
            # As written; a value merged in with '<<' is read as converted.
            variables[name] = str(scalar.value if scalar is not None else node.value)
    if problems:
        raise SpecError(problems)
    return variables


def _is_empty(scalar: object, value: object) -> bool:
    if scalar is None:
        return value is None
    tag = getattr(scalar, "tag", None)
    return tag == _NULL or (
        getattr(scalar, "value", "") == "" and not getattr(scalar, "style", None)
    )


def _for_var_file(problem: Problem) -> Problem:
    """A loading problem worded for a variable file rather than a spec."""
    message = problem.message.replace("specs are limited", "variable files are limited")
    return Problem(problem.path, problem.line, problem.col, message, problem.severity)
