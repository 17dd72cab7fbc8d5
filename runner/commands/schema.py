"""``runner schema``: the JSON Schema of a spec, for editors."""

from __future__ import annotations

import json

import click

from runner.output import echo


def spec_schema_text() -> str:
    """The schema as committed to ``specs/spec.schema.json``."""
    from runner.spec.models import Spec

    return json.dumps(Spec.model_json_schema(), indent=2, sort_keys=True) + "\n"


@click.command("schema")
def command() -> int:
    """Print the JSON Schema of a spec file."""
    echo(spec_schema_text(), end="")
    return 0
