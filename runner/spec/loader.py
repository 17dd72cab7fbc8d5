"""Loading specs: files -> located trees -> extends -> rendered leaves -> models -> runs.

Every problem in every file is collected, then raised together as one SpecError, so
``runner validate`` shows them all in one pass, each as ``path:line:col: message``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runner.errors import Problem, SpecError, quoted
from runner.secrets import Secret
from runner.spec.checks import run_checks
from runner.spec.errors import describe_validation_error
from runner.spec.located import Located, Path_, dotted, extends_root, shown_path
from runner.spec.models import (
    DEFAULT_TOKEN_TEMPLATE,
    FLAG_KEYS,
    Batch,
    Run,
    RunSettings,
    Spec,
    ignored_fields,
)
from runner.spec.request import build_request
from runner.spec.resolved import BatchSpec, EnvironmentSpec, RunSpec, SpecSet
from runner.spec.templates import Renderer, RenderOptions
from runner.spec.yaml_source import Pos, YamlLoadError, YNode, parse_yaml_bytes, read_spec_bytes

SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_PATHS = ("specs",)


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """The spec files named by ``paths`` (files, or folders of ``*.yaml``/``*.yml``)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                problems.append(
                    Problem(str(raw), 0, 0, "no *.yaml or *.yml spec files in this folder")
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(raw), 0, 0, "no such file or folder"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


#: How many bases one spec may stack with ``extends`` (a base extending a base ...).
MAX_EXTENDS_DEPTH = 32


def is_base(path: Path) -> bool:
    """Files whose name starts with ``_`` are bases for ``extends``, not environments."""
    return path.name.startswith("_")


class _Loader:
    def __init__(
        self,
        options: RenderOptions,
        environ: Mapping[str, str],
        only: Collection[str] | None = None,
    ) -> None:
        self.renderer = Renderer(options)
        self.environ = environ
        self.only = None if only is None else frozenset(only)
        self.unselected: list[str] = []  # environments left out by ``only``, by name
        self.problems: list[Problem] = []
        self.file_hashes: dict[str, str] = {}
        self._trees: dict[Path, YNode | None] = {}
        self._root = Path("/")

    def read(self, path: Path) -> YNode | None:
        if path not in self._trees:
            shown = shown_path(path)
            try:
                raw = read_spec_bytes(path, shown)
                self.file_hashes[shown] = hashlib.sha256(raw).hexdigest()
                self._trees[path] = parse_yaml_bytes(raw, shown)
            except (YamlLoadError, OSError) as error:
                if isinstance(error, YamlLoadError):
                    self.problems.append(error.problem)
                else:
                    self.problems.append(Problem(shown, 0, 0, f"cannot read file: {error}"))
                self._trees[path] = None
        return self._trees[path]

    def load_environment(self, path: Path) -> tuple[Spec, Located, tuple[str, ...]] | None:
        shown = shown_path(path)
        tree = self.read(path)
        if tree is None:
            if shown in self.file_hashes and not any(p.path == shown for p in self.problems):
                self.problems.append(
                    Problem(
                        shown,
                        1,
                        1,
                        "the file is empty; a spec needs version: 1, environmentID and runs",
                    )
                )
            return None
        if not tree.is_map:
            self.problems.append(
                tree.pos.problem(
                    "a spec must be a mapping of keys (version, environmentID, runs, ...), "
                    f"not {_kind(tree)}"
                )
            )
            return None
        chain = [path.resolve()]
        self._root = extends_root(path)
        merged = self._extend(path, tree, chain=chain)
        if merged is None:
            return None
        if self.only is not None:
            name = _declared_name(merged, path)
            if name is not None and name not in self.only:
                self.unselected.append(name)
                return None  # not rendered: its templates and secrets are not needed
        _default_token(merged)
        spec_problems: list[Problem] = []
        located = Located(data=None)
        located.data = self._render(merged, (), path.resolve().parent, located, spec_problems)
        self.problems.extend(spec_problems)
        if any(p.severity == "error" for p in spec_problems):
            return None
        checks = run_checks(located.data, located, self.environ)
        self.problems.extend(checks)
        try:
            spec = Spec.model_validate(located.data)
        except ValidationError as error:
            self.problems.extend(describe_validation_error(error, located, shown))
            return None
        if any(p.severity == "error" for p in checks):
            return None
        return spec, located, tuple(shown_path(p) for p in chain)

    def _extend(self, path: Path, tree: YNode, chain: list[Path]) -> YNode | None:
        """Deep-merge the bases named by ``extends`` (maps merge, lists and values replace)."""
        assert tree.entries is not None
        entry = tree.entries.get("extends")
        if entry is None:
            return tree
        value = entry[1]
        if not isinstance(value.value, str) or not value.value:
            self.problems.append(
                value.pos.problem("extends must be the path of a base file, such as _base.yaml")
            )
            return None
        base_path = (path.parent / value.value).resolve()
        if not base_path.is_relative_to(self._root):
            self.problems.append(
                value.pos.problem(
                    f"extends: '{value.value}' is outside {shown_path(self._root)}; a base "
                    "must be in the spec's folder (or, in a git work tree, in the repository)"
                )
            )
            return None
        if len(chain) > MAX_EXTENDS_DEPTH:
            self.problems.append(
                value.pos.problem(
                    f"extends: more than {MAX_EXTENDS_DEPTH} bases in a chain; merge some of "
                    "them into one file"
                )
            )
            return None
        if base_path in chain:
            cycle = " -> ".join(shown_path(p) for p in [*chain, base_path])
            self.problems.append(value.pos.problem(f"extends makes a cycle: {cycle}"))
            return None
        if not base_path.is_file():
            self.problems.append(
                value.pos.problem(
                    f"extends: base file '{value.value}' not found "
                    f"(looked for {shown_path(base_path)})"
                )
            )
            return None
        base = self.read(base_path)
        if base is None:
            return None
        if not base.is_map:
            self.problems.append(
                base.pos.problem(f"a base file must be a mapping of keys, not {_kind(base)}")
            )
            return None
        chain.append(base_path)
        base = self._extend(base_path, base, chain)
        if base is None:
            return None
        own = {k: v for k, v in tree.entries.items() if k != "extends"}
        return _merge(base, YNode(None, tree.pos, entries=own))

    def _render(
        self, node: YNode, path: Path_, spec_dir: Path, located: Located, problems: list[Problem]
    ) -> Any:
        located.values[path] = node.pos
        if node.entries is not None:
            result: dict[str, Any] = {}
            for key, (key_pos, child) in node.entries.items():
                located.keys[(*path, key)] = key_pos
                result[key] = self._render(child, (*path, key), spec_dir, located, problems)
            return result
        if node.items is not None:
            return [
                self._render(child, (*path, index), spec_dir, located, problems)
                for index, child in enumerate(node.items)
            ]
        value = node.value
        if isinstance(value, str) and Renderer.is_template(value) and path != ("extends",):
            located.templated[path] = value
            rendered = self.renderer.render(
                value,
                node.pos,
                spec_dir=spec_dir,
                secrets_allowed=_secrets_allowed(path),
                where=dotted(path),
                problems=problems,
            )
            return _flag(rendered) if path and path[-1] in FLAG_KEYS else rendered
        return value


def _flag(rendered: Any) -> Any:
    """A template renders text: where a flag belongs, "true"/"false" is the boolean."""
    if isinstance(rendered, str) and rendered.strip().lower() in ("true", "false"):
        return rendered.strip().lower() == "true"
    return rendered


def _declared_name(tree: YNode, path: Path) -> str | None:
    """The environment's name as written (``name:``, else the file's stem), or None when
    a template makes it (only rendering tells)."""
    assert tree.entries is not None
    entry = tree.entries.get("name")
    if entry is None:
        return path.stem
    value = entry[1].value
    if isinstance(value, str) and not Renderer.is_template(value):
        return value
    return None


def _secrets_allowed(path: Path_) -> bool:
    return path == ("coalesce", "token") or (len(path) == 2 and path[0] == "userCredentials")


def _default_token(tree: YNode) -> None:
    """A spec without ``coalesce.token`` reads it from COALESCE_TOKEN (DESIGN §2)."""
    assert tree.entries is not None
    coalesce = tree.entries.get("coalesce")
    if coalesce is None:
        pos = tree.pos
        token = YNode(DEFAULT_TOKEN_TEMPLATE, pos)
        tree.entries["coalesce"] = (pos, YNode(None, pos, entries={"token": (pos, token)}))
        return
    node = coalesce[1]
    if node.entries is not None and "token" not in node.entries:
        node.entries["token"] = (coalesce[0], YNode(DEFAULT_TOKEN_TEMPLATE, coalesce[0]))


def _merge(base: YNode, over: YNode) -> YNode:
    if base.entries is None or over.entries is None:
        return over
    entries = dict(base.entries)
    for key, (key_pos, value) in over.entries.items():
        if key in entries:
            entries[key] = (key_pos, _merge(entries[key][1], value))
        else:
            entries[key] = (key_pos, value)
    return YNode(None, over.pos, entries=entries)


def _kind(node: YNode) -> str:
    if node.is_list:
        return "a list"
    return "a single value" if node.value is not None else "empty"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Loading allocates hundreds of thousands of small objects and frees almost none:
    the cyclic collector would walk them again and again (half of a large load) to find
    nothing. It runs again as soon as the load is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_specs(
    paths: Sequence[str | Path] = DEFAULT_PATHS,
    *,
    options: RenderOptions | None = None,
    environ: Mapping[str, str] | None = None,
    environments: Collection[str] | None = None,
) -> SpecSet:
    """Load, render and validate specs; raise :class:`SpecError` with every problem found.

    With ``environments``, only the specs of those environments are rendered and
    validated (the others are read and hashed, never rendered: a job that deploys prod
    needs prod's secrets only); their names are in :attr:`SpecSet.unselected`."""
    with gc_paused():
        return _load_specs(paths, options, environ, environments)


def _load_specs(
    paths: Sequence[str | Path],
    options: RenderOptions | None,
    environ: Mapping[str, str] | None,
    only: Collection[str] | None = None,
) -> SpecSet:
    environ = os.environ if environ is None else environ
    options = options or RenderOptions(environ=environ)
    loader = _Loader(options, environ, only)
    files, problems = discover(paths)
    loader.problems.extend(problems)
    environments: list[EnvironmentSpec] = []
    seen: dict[str, str] = {}
    for path in files:
        if is_base(path):
            loader.read(path)  # bases are checked for YAML errors and hashed for plan files
            continue
        loaded = loader.load_environment(path)
        if loaded is None:
            continue
        spec, located, chain = loaded
        shown = shown_path(path)
        environment = resolve_environment(spec, located, path, chain)
        if environment.name in seen:
            loader.problems.append(
                located.value_pos(("name",) if spec.name else ()).problem(
                    f"environment name {quoted(environment.name)} is also used by "
                    f"{seen[environment.name]}; names must be unique (set name: in one of them)"
                )
            )
            continue
        seen[environment.name] = shown
        environments.append(environment)
    errors = [p for p in loader.problems if p.severity == "error"]
    if errors:
        raise SpecError(sorted(set(loader.problems)))
    warnings = tuple(sorted({p for p in loader.problems if p.severity != "error"}))
    return SpecSet(
        tuple(environments), dict(loader.file_hashes), warnings, tuple(sorted(loader.unselected))
    )


def resolve_environment(
    spec: Spec, located: Located, path: Path, files: tuple[str, ...] = ()
) -> EnvironmentSpec:
    """The runs of a validated spec, with ``defaults`` merged and requests built."""
    name = spec.name or path.stem
    defaults = (spec.defaults or RunSettings()).model_dump(exclude_none=True)
    written: list[tuple[Batch, Path_]]
    if spec.runs is not None:  # `runs:` is one batch named "default"
        written = [(Batch(name="default", runs=spec.runs), ("runs",))]
    else:
        written = [(b, ("batches", i, "runs")) for i, b in enumerate(spec.batches or [])]
    batches = [
        BatchSpec(
            batch.name,
            batch.maxConcurrent,
            batch.onFailure,
            tuple(
                _resolve_run(name, batch.name, spec, defaults, run, located.value_pos((*at, i)))
                for i, run in enumerate(batch.runs)
            ),
        )
        for batch, at in written
    ]
    token = spec.coalesce.token
    return EnvironmentSpec(
        name=name,
        environment_id=spec.environmentID,
        url=spec.coalesce.url,
        token=token if isinstance(token, Secret) else None,
        token_source=_token_source(located),
        path=shown_path(path),
        batches=tuple(batches),
        files=files or (shown_path(path),),
    )


def merge_run(defaults: Mapping[str, Any], run: Run) -> dict[str, Any]:
    """A run's own keys win over ``defaults`` (a dump of the spec's ``defaults``, made
    once per spec); parameters merge key by key."""
    merged = dict(defaults)
    merged.update(run.model_dump(exclude_none=True, exclude={"name"}))
    parameters = {**defaults.get("parameters", {}), **(run.parameters or {})}
    if parameters:
        merged["parameters"] = parameters
    return merged


def _resolve_run(
    environment: str, batch: str, spec: Spec, defaults: Mapping[str, Any], run: Run, pos: Pos
) -> RunSpec:
    settings = merge_run(defaults, run)
    return RunSpec(
        environment=environment,
        batch=batch,
        name=run.name,
        request=build_request(spec.environmentID, settings, spec.userCredentials),
        timeout=settings.get("timeout"),
        allow_empty=bool(settings.get("allowEmpty")),
        path=pos.path,
        line=pos.line,
        ignore_changes=ignored_fields(settings.get("ignoreChanges")),
        if_running=settings.get("ifRunning") or "wait",
    )


def _token_source(located: Located) -> str:
    """Where the token comes from, in words, for a 401 hint; never the value."""
    template = located.templated.get(("coalesce", "token"), "")
    pos = located.value_pos(("coalesce", "token"))
    env_var = re.search(r"secret\(\s*['\"]([^'\"]+)['\"]", template)
    if env_var:
        return f"the environment variable {env_var.group(1)}"
    from_file = re.search(r"secret_file\(\s*['\"]([^'\"]+)['\"]", template)
    if from_file:
        return f"the file {from_file.group(1)}"
    return f"coalesce.token at {pos.path}:{pos.line}"
