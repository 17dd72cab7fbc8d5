"""An imported spec as YAML (with comments saying where each run came from), as a JSON
document for scripts, and written to a file.

Every string value is double-quoted (an ID, a date, ``yes`` or ``{ location: STG }``
is never read back as something else) and goes through
:func:`~runner.importing.text.template_safe`; Coalesce's text in comments is quoted by
:func:`~runner.importing.text.comment_text`, on one line.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from runner.coalesce.models import DeployedJob
from runner.errors import RunnerError
from runner.files import write_atomically
from runner.importing.build import ImportedRun, ImportedSpec
from runner.importing.credentials import PASSPHRASE_TEMPLATE
from runner.importing.text import COMMENT_LIMIT, comment_text, template_safe
from runner.output import FORMAT_VERSION
from runner.secrets import WITHHELD_NAME, holds_secret
from runner.spec.models import DEFAULT_TOKEN_TEMPLATE, DEFAULT_URL
from runner.spec.yaml_source import MAX_FILE_BYTES

__all__ = ["spec_data", "spec_document", "spec_yaml", "write_spec_file"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCHEMA_LINE = "yaml-language-server: $schema=./spec.schema.json"


def spec_data(spec: ImportedSpec) -> dict[str, Any]:
    """The spec as plain data, exactly as the YAML holds it."""
    data: dict[str, Any] = {
        "version": 1,
        "environmentID": spec.environment_id,
        "name": spec.name,
        "coalesce": {"url": spec.url, "token": DEFAULT_TOKEN_TEMPLATE},
        "userCredentials": spec.credentials.as_data(),
    }
    if spec.runs:
        data["runs"] = [_run_data(run, spec.environment_id) for run in spec.runs]
    return data


def _run_data(run: ImportedRun, environment_id: str) -> dict[str, Any]:
    request = run.request
    data: dict[str, Any] = {"name": run.name}
    if request.job_id is not None:
        data["jobID"] = request.job_id
    if request.include is not None:
        data["includeNodesSelector"] = template_safe(request.include)
    if request.exclude is not None:
        data["excludeNodesSelector"] = template_safe(request.exclude)
    if request.job_id is None and request.include is None and request.exclude is None:
        data["allNodes"] = True
    if request.parallelism is not None:
        data["parallelism"] = request.parallelism
    if request.force:
        data["forceIgnoreEnvironmentStatus"] = True
    if request.parameters:
        data["parameters"] = {key: template_safe(value) for key, value in request.parameters}
    return data


def spec_yaml(spec: ImportedSpec, *, command: str) -> str:
    """The spec file's text; ``command`` is how it was made, for its first comment."""
    data = spec_data(spec)
    root = _commented(data)
    assert isinstance(root, CommentedMap)
    root.yaml_set_start_comment("\n".join([SCHEMA_LINE, *_header(spec, command)]))
    credentials = spec.credentials
    lines = [f"userCredentials: {credentials.auth_type}, {credentials.source}."]
    lines += [f"{note}." for note in credentials.notes]
    if credentials.auth_type == "KeyPair":
        lines.append(
            "Coalesce does not say whether the key is encrypted; if it is, add "
            f'snowflakeKeyPairPass: "{PASSPHRASE_TEMPLATE}"'
        )
    lines.append("Secrets are read when the spec is applied; none is written here.")
    root.yaml_set_comment_before_after_key("userCredentials", before="\n".join(lines), indent=0)
    if spec.url == DEFAULT_URL:
        del root["coalesce"]["url"]
    runs = root.get("runs")
    if isinstance(runs, CommentedSeq):
        for index, run in enumerate(spec.runs):
            runs.yaml_set_comment_before_after_key(
                index, before="\n".join(_origin(run, spec)), indent=2
            )
    stream = io.StringIO()
    yaml = YAML()
    yaml.width = 1 << 30  # never fold a long value across lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(root, stream)
    text = stream.getvalue()
    size = len(text.encode("utf-8"))
    if size > MAX_FILE_BYTES:
        raise RunnerError(
            f"the spec for environment {spec.environment_id} would be {size:,} bytes, more "
            f"than the {MAX_FILE_BYTES:,} a spec file may hold, so it was not written",
            hint="import fewer runs (a shorter --since); a run's parameters may be very large",
        )
    return text


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            # A parameter's name is Coalesce's text: quoted unless it is a plain word
            # (a quoted "<<" is a name, not a YAML merge).
            shown = key if _PLAIN_KEY.fullmatch(key) else DoubleQuotedScalarString(key)
            mapping[shown] = _commented(item)
        return mapping
    if isinstance(value, list):
        return CommentedSeq(_commented(item) for item in value)
    if isinstance(value, str):
        return DoubleQuotedScalarString(value)
    return value


def _header(spec: ImportedSpec, command: str) -> list[str]:
    since = spec.since.strftime("%Y-%m-%d %H:%M UTC")
    jobs = sum(1 for run in spec.runs if run.source.kind == "job")
    lines = [
        f"Written by `{command}`: {jobs} job run(s) and {len(spec.runs) - jobs} ad-hoc "
        f"run(s), from the environment's jobs and its {spec.history_runs} refresh run(s) "
        f"started since {since}.",
        "Review it before applying: every run below is in one batch (`runs:`), so apply "
        "fires them all at once.",
    ]
    lines += [f"Note: {note}." for note in spec.notes]
    if spec.left_out:
        shown = ", ".join(str(item.run_id) for item in spec.left_out[:20])
        more = len(spec.left_out) - 20
        lines.append(
            f"Left out: run(s) {shown}{f' and {more} more' if more > 0 else ''} "
            "(see `runner import --format json` for why)."
        )
    return lines


def _origin(run: ImportedRun, spec: ImportedSpec) -> list[str]:
    source = run.source
    lines: list[str] = []
    if source.kind == "job":
        job = source.job
        assert job is not None
        lines.append(f"job {job.id} {_job_text(job.name)}{_selectors_text(job)}")
        if source.runs:
            lines.append(
                f"as its latest run {source.runs[0]}{_at(source.latest_start)} asked"
                f"{_more(len(source.runs) - 1, 'with the same request')}"
            )
        else:
            lines.append(f"not run since {spec.since:%Y-%m-%d}: its jobID alone")
        if source.other_settings:
            lines.append(f"{source.other_settings} earlier run(s) of it had other settings")
        if source.ad_hoc_runs:
            ids = ", ".join(str(i) for i in source.ad_hoc_runs[:10])
            lines.append(f"also fired ad hoc with the same request as run(s) {ids}")
    else:
        lines.append(
            f"ad-hoc refresh: run {source.runs[0]}{_at(source.latest_start)}"
            f"{_more(len(source.runs) - 1, 'with the same request')}"
        )
        twin = source.same_nodes_as
        if twin is not None:
            lines.append(f"selects what job {twin.id} {_job_text(twin.name)} selects")
    return lines


def _quoted(text: str, limit: int = COMMENT_LIMIT) -> str:
    """Coalesce's text for a comment, unless it holds a credential."""
    return (
        "(withheld: it holds a credential)"
        if holds_secret(text)
        else comment_text(text, limit=limit)
    )


def _job_text(name: str | None) -> str:
    return _quoted(name) if name else "(no name shown)"


def _selectors_text(job: DeployedJob) -> str:
    parts = []
    for label, value in (("include", job.includeSelector), ("exclude", job.excludeSelector)):
        if value:
            parts.append(f"{label}: {_quoted(value, limit=80)}")
    return f" ({', '.join(parts)})" if parts else ""


def _at(started: str | None) -> str:
    return f" at {_quoted(started, limit=40)}" if started else ""


def _more(count: int, what: str) -> str:
    return f" (and {count} earlier run(s) {what})" if count > 0 else ""


def spec_document(spec: ImportedSpec, *, path: str | None) -> dict[str, Any]:
    """``runner import --format json``: the spec as data, and where each run came from."""
    return {
        "formatVersion": FORMAT_VERSION,
        "kind": "runner-import",
        "environmentID": spec.environment_id,
        "path": path,
        "since": spec.since.isoformat(),
        "historyRuns": spec.history_runs,
        "jobsListed": spec.jobs_listed,
        "spec": spec_data(spec),
        "runs": [_source_document(run, spec.environment_id) for run in spec.runs],
        "leftOut": [{"run": item.run_id, "reason": item.reason} for item in spec.left_out],
        "credentials": {
            "authType": spec.credentials.auth_type,
            "source": spec.credentials.source,
            "notes": list(spec.credentials.notes),
        },
        "notes": list(spec.notes),
    }


def _source_document(run: ImportedRun, environment_id: str) -> dict[str, Any]:
    source = run.source
    document: dict[str, Any] = {
        "name": run.name,
        "source": source.kind,
        "runs": list(source.runs),
        "latestStart": source.latest_start,
        "request": run.request.body(environment_id),
    }
    if source.job is not None:
        document["job"] = _job_document(source.job)
        document["adHocRuns"] = list(source.ad_hoc_runs)
        document["otherSettings"] = source.other_settings
    if source.same_nodes_as is not None:
        document["sameNodesAs"] = _job_document(source.same_nodes_as)
    return document


def _job_document(job: DeployedJob) -> dict[str, Any]:
    def shown(text: str | None) -> str | None:
        return WITHHELD_NAME if text is not None and holds_secret(text) else text

    return {
        "id": job.id,
        "name": shown(job.name),
        "includeSelector": shown(job.includeSelector),
        "excludeSelector": shown(job.excludeSelector),
    }


def write_spec_file(text: str, path: Path, *, force: bool) -> None:
    """Write ``text`` to ``path``: refused when it exists unless ``force``; atomic."""
    if path.is_dir():
        raise RunnerError(f"{path} is a folder; nothing was written", hint="give --out a file")
    if os.path.lexists(path) and not force:  # (a link, even one to nothing, is there)
        raise RunnerError(
            f"{path} already exists; nothing was written",
            hint="pass --force to replace it, or --out to write elsewhere",
        )
    write_atomically(path, text, mode=0o644, keep_existing=not force)
