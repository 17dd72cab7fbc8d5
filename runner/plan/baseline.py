"""Baselines: what the specs are compared with.

- the last applied state (the default): the latest fired request of each run;
- ``--against GIT_REF``: the specs as they were at that revision, read through git and
  rendered the same way (same variables, same frozen ``now()``), with no secrets.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunnerError, SpecError
from runner.identity import RunKey
from runner.spec import RenderOptions, load_specs
from runner.state import UNCERTAIN_STATUSES


@dataclass(frozen=True)
class BaselineRun:
    environment: str
    batch: str
    name: str
    request: Mapping[str, Any]  # redacted
    uncertain: bool = False  # the apply that fired it could not tell if it was created
    # The job's name when the spec named it (a git baseline: the plan resolves it with
    # the environment's jobs as they are now, since that revision was never sent).
    job_name: str | None = None

    @property
    def identity(self) -> str:
        return str(RunKey(self.environment, self.name))


@dataclass(frozen=True)
class Baseline:
    """The runs a plan compares with, by identity, and a name for the reader."""

    label: str
    runs: Mapping[str, BaselineRun]


def state_baseline(reader: Any, environments: Iterable[str] | None = None) -> Baseline:
    """The latest fired request of each run recorded in the state."""
    applied = reader.last_applied_runs(environments) if reader is not None else {}
    return _state_runs(applied, reader)


def planned_state_baseline(reader: Any, paths: Sequence[str], present: Iterable[str]) -> Baseline:
    """The state's runs of the environments a plan of ``paths`` compares with: those
    whose specs it read (``present``), and those whose spec, when they were last applied,
    was under ``paths``: they are "removed" (their spec file is gone, or no longer names
    them). An environment whose spec is elsewhere is out of this plan's sight, not
    removed (``runner plan specs/dev.yaml`` says nothing of prod).

    The spec's path is the one the last apply's plan recorded: relative to the folder
    the plan was made in, read here relative to the current folder."""
    if reader is None:
        return _state_runs({})
    applied = reader.last_applied_runs()
    scope = set(present)
    roots = [Path(p).resolve() for p in paths]
    a_folder = any(root.is_dir() for root in roots)
    for environment in {record.environment for record in applied.values()} - scope:
        path = _last_spec_path(reader, environment)
        # A last apply that kept no plan (a rerun) does not say where: under a folder.
        if a_folder if path is None else any(_under(path, root) for root in roots):
            scope.add(environment)
    return _state_runs({i: r for i, r in applied.items() if r.environment in scope}, reader)


def _state_runs(applied: Mapping[str, Any], reader: Any = None) -> Baseline:
    names = _JobNames(reader)
    runs = {
        identity: BaselineRun(
            r.environment,
            r.batch,
            r.name,
            r.request,
            r.status in UNCERTAIN_STATUSES,
            job_name=names.of(r),
        )
        for identity, r in applied.items()
    }
    return Baseline("state", runs)


def _last_spec_path(reader: Any, environment: str) -> Path | None:
    record = reader.last_apply(environment)
    document = reader.apply_plan(record.apply_id) if record is not None else None
    for entry in (document or {}).get("environments", []):
        if entry.get("name") == environment and entry.get("path"):
            return Path(str(entry["path"])).resolve()
    return None


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def git_baseline(ref: str, paths: Sequence[str], options: RenderOptions) -> Baseline:
    """The specs under ``paths`` as they were at git revision ``ref``, rendered alike."""
    top = _git(["rev-parse", "--show-toplevel"], Path.cwd()).strip()
    commit = _commit_of(ref, Path(top))
    with tempfile.TemporaryDirectory(prefix="runner-against-") as scratch:
        root = Path(scratch)
        listed = _git(["ls-tree", "-r", "--name-only", commit], Path(top)).splitlines()
        wanted = _relative_paths(paths, Path(top))
        for name in listed:
            if _wanted(name, wanted):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_git_bytes(["show", f"{commit}:{name}"], Path(top)))
        old_paths = [str(root / w) for w in wanted if (root / w).exists()]
        if not old_paths:
            return Baseline(f"git:{ref}", {})
        quiet = RenderOptions(
            variables=options.variables,
            environ=options.environ,
            now=options.now,
            require_secrets=False,
            read_secrets=False,  # compared, never sent: no secret is read
        )
        try:
            specs = load_specs(old_paths, options=quiet, environ=options.environ)
        except SpecError as error:
            raise RunnerError(
                f"the specs at {ref} do not load, so they cannot be a baseline:\n"
                + str(error).replace(str(root) + "/", f"{ref}:"),
                hint="compare with another revision, or plan against the state (no --against)",
            ) from None
    runs = {
        run.identity: BaselineRun(
            run.environment,
            run.batch,
            run.name,
            run.request.redacted(),
            job_name=run.request.job_name,
        )
        for run in specs.runs()
    }
    return Baseline(f"git:{ref}", runs)


def _commit_of(ref: str, top: Path) -> str:
    """The commit ``ref`` names. A ref a shallow clone lacks (actions/checkout fetches one
    commit by default) is an error that says how to fetch it."""
    try:
        return _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top).strip()
    except RunnerError:
        shallow = _git(["rev-parse", "--is-shallow-repository"], top).strip() == "true"
        if not shallow:
            raise
    raise RunnerError(
        f"--against {ref}: this clone is shallow and does not have {ref}, so the specs "
        "cannot be compared with it",
        hint="check out the whole history (actions/checkout with 'fetch-depth: 0'), or fetch "
        f"the base branch first: {_fetch_command(ref)}",
    ) from None


def _fetch_command(ref: str) -> str:
    remote, slash, branch = ref.partition("/")
    if slash and remote == "origin" and branch:
        return f"git fetch --no-tags --depth=1 origin {branch}:refs/remotes/origin/{branch}"
    return f"git fetch --no-tags --depth=1 origin {ref}:{ref}"


def _relative_paths(paths: Sequence[str], top: Path) -> list[str]:
    """``paths`` relative to the repository's top folder ("" for the top itself)."""
    root = top.resolve()
    relative: list[str] = []
    for raw in paths:
        resolved = Path(raw).resolve()
        if resolved == root:
            relative.append("")
            continue
        try:
            relative.append(resolved.relative_to(root).as_posix())
        except ValueError:
            raise RunnerError(
                f"{raw} is outside the git repository at {top}; --against reads specs through git"
            ) from None
    return relative


def _wanted(name: str, wanted: Sequence[str]) -> bool:
    return any(w == "" or name == w or name.startswith(w + "/") for w in wanted)


def _git(args: list[str], cwd: Path) -> str:
    return _git_bytes(args, cwd).decode()


def _git_bytes(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RunnerError("--against needs git, and git is not installed") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip() or "unknown revision"
        raise RunnerError(
            f"git {' '.join(args[:1])} failed: {detail}",
            hint="--against takes a branch, tag or commit of this repository, e.g. origin/main",
        )
    return done.stdout


class _JobNames:
    """The job name each applied run was planned with, from the plan its apply kept
    (the journal keeps the request sent, which has only the ID): an offline plan can
    then tell a run naming the same job from one that changed it."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._plans: dict[int, dict[tuple[str, str], str]] = {}

    def of(self, record: Any) -> str | None:
        if self._reader is None or "jobID" not in record.request.get("runDetails", {}):
            return None  # (a run sent without a job ID named none: no plan to read)
        if record.apply_id not in self._plans:
            self._plans[record.apply_id] = _named_jobs(self._reader.apply_plan(record.apply_id))
        return self._plans[record.apply_id].get((record.environment, record.name))


def _named_jobs(document: Mapping[str, Any] | None) -> dict[tuple[str, str], str]:
    named: dict[tuple[str, str], str] = {}
    for run in (document or {}).get("runs", []):
        job = run.get("job") if isinstance(run, Mapping) else None
        if isinstance(job, Mapping) and job.get("byName") and isinstance(job.get("name"), str):
            named[(run.get("environment"), run.get("name"))] = job["name"]
    return named
