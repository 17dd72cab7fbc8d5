"""``runner import``: write a spec for an environment that already exists in Coalesce."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.errors import RunnerError
from runner.output import echo, echo_err, note

if TYPE_CHECKING:
    from runner.importing import ImportedSpec

TOKEN_ENV = "COALESCE_TOKEN"


@click.command("import")
@click.argument("environment_id", metavar="ENVIRONMENT_ID")
@click.option(
    "--url",
    envvar="COALESCE_URL",
    default="https://app.coalescesoftware.io",
    show_default=True,
    help="The Coalesce API (also COALESCE_URL); sim:// is the embedded simulator.",
)
@click.option(
    "--since",
    default="14d",
    show_default=True,
    help="How far back to read runs: weeks, days, hours, minutes (2w, 14d, 36h, 1d12h).",
)
@click.option("--name", help="The environment's name in runner (default: Coalesce's, as a slug).")
@click.option(
    "--out",
    metavar="PATH",
    help="Where to write the spec (default: specs/NAME.yaml); - prints it to stdout.",
)
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print a document with the spec as data and where each run came from.",
)
def command(
    environment_id: str,
    url: str,
    since: str,
    name: str | None,
    out: str | None,
    force: bool,
    fmt: str,
) -> int:
    """Write a spec for ENVIRONMENT_ID from its jobs and recent refresh runs.

    One run per job (named after it) and one per distinct ad-hoc request of the run
    history, with credentials as templates (never a value) and comments saying where
    each run came from. The token is read from COALESCE_TOKEN.
    """
    import os

    from runner.importing import parse_since, spec_document, spec_yaml, write_spec_file
    from runner.spec.models import NAME_PATTERN

    if not re.fullmatch(r"[0-9]+", environment_id):
        raise click.BadParameter(
            f"{environment_id!r} is not a Coalesce environment ID (digits, like 12)",
            param_hint="ENVIRONMENT_ID",
        )
    if name is not None and (not re.fullmatch(NAME_PATTERN, name) or len(name) > 128):
        raise click.BadParameter(
            f"{name!r} is not a spec name: letters, digits, '_', '.' and '-', starting with "
            "a letter or digit",
            param_hint="--name",
        )
    span = parse_since(since)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise RunnerError(
            f"{TOKEN_ENV} is not set: runner import reads Coalesce with it",
            hint="set COALESCE_TOKEN to a Coalesce access token (Deploy > Generate Access Token)",
        )
    imported = _read(environment_id, url, token, span, name)
    command_line = f"runner import {environment_id} --since {since.strip()}"  # as parsed
    text = spec_yaml(imported, command=command_line)
    path = Path(out) if out is not None else Path("specs") / f"{imported.name}.yaml"
    to_stdout = out == "-"
    if not to_stdout:
        write_spec_file(text, path, force=force)
    if fmt == "json":
        document = spec_document(imported, path=None if to_stdout else str(path))
        document["yaml"] = text
        echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif to_stdout:
        echo(text, end="")
    _summary(imported, None if to_stdout else path)
    return 0


def _read(
    environment_id: str, url: str, token: str, span: dt.timedelta, name: str | None
) -> ImportedSpec:
    from runner.importing import aimport_environment
    from runner.runtime import Runtime, on_own_loop
    from runner.secrets import KNOWN_SECRETS, Secret

    KNOWN_SECRETS.register(token)

    async def read() -> ImportedSpec:
        async with Runtime().pool() as pool:
            client = pool.client(
                url, Secret(token), token_source=f"the environment variable {TOKEN_ENV}"
            )
            return await aimport_environment(client, environment_id, url=url, since=span, name=name)

    return on_own_loop(read)()


def _summary(imported: ImportedSpec, path: Path | None) -> None:
    jobs = sum(1 for run in imported.runs if run.source.kind == "job")
    where = f"Wrote {path}" if path is not None else "Printed the spec"
    note(
        f"{where}: {jobs} job run(s) and {len(imported.runs) - jobs} ad-hoc run(s), from "
        f"{imported.history_runs} refresh run(s) since {imported.since:%Y-%m-%d %H:%M} UTC."
    )
    for item in imported.left_out:
        echo_err(f"warning: run {item.run_id} was left out: {item.reason}")
    for text in (*imported.credentials.notes, *imported.notes):
        echo_err(f"warning: {text}")
    if path is not None:
        note(f"Next: runner validate {path} && runner plan {path}")
