"""Rendering string leaves with sandboxed Jinja2, and resolving secrets.

Templates see four functions and nothing else: ``var()``, ``secret()``,
``secret_file()`` and ``now()``. A secret never enters the template's own output: the
function returns an unforgeable placeholder, and only after rendering, once we know
where the value lands, is the placeholder swapped for a :class:`~runner.secrets.Secret`.
That is how a secret in a parameter or a selector is caught without ever printing it.
"""

from __future__ import annotations

import datetime as dt
import operator
import os
import re
import secrets as stdlib_secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from runner.errors import Problem
from runner.secrets import Secret
from runner.spec.yaml_source import Pos

MAX_SECRET_FILE_BYTES = 64 * 1024
MAX_RENDERED_CHARS = 64 * 1024
MAX_REPEAT = 10_000
MAX_EXPONENT = 256

_UNSET: Any = object()


class MissingSecret(Secret):
    """A secret that could not be read; allowed in ``validate`` and ``plan``, never in ``apply``."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        super().__init__("")
        self.source = source


@dataclass
class RenderOptions:
    """What templates may read. ``environ`` is injectable so tests need no monkeypatching."""

    variables: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    require_secrets: bool = False


# Methods whose width argument can allocate without bound ('{:>999999999}'.format(1)).
_UNSAFE_METHODS = frozenset(
    ["format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs"]
)
_WIDE_PERCENT = re.compile(r"%[-+ #0]*(\d{5,}|\*)")
# Statements that loop or define code: spec values need expressions, and without loops
# a template's running time is bounded by its length.
_FORBIDDEN_NODES = (
    nodes.For,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.Import,
    nodes.FromImport,
    nodes.Include,
    nodes.Extends,
)


class _GuardedSandbox(SandboxedEnvironment):
    """The standard sandbox, plus limits on what can exhaust memory or time."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in _UNSAFE_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute in _UNSAFE_METHODS:
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "%":
            if isinstance(left, str) and _WIDE_PERCENT.search(left):
                raise SecurityError("a %-format with a width of 10,000 or more is not allowed")
            return operator.mod(left, right)
        if op == "**":
            if isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return operator.pow(left, right)
        if op == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and count * max(len(seq), 1) > MAX_REPEAT:
                    raise SecurityError(f"repeating a value {count} times is not allowed")
            return operator.mul(left, right)
        return super().call_binop(context, op, left, right)


class _SecretRequest(Exception):
    pass


@dataclass
class _Leaf:
    """What one render of one string leaf used."""

    placeholders: dict[str, Secret] = field(default_factory=dict)
    missing_vars: list[str] = field(default_factory=list)


class Renderer:
    """Renders the string leaves of the specs of one load, with one frozen ``now()``."""

    def __init__(self, options: RenderOptions) -> None:
        self.options = options
        self._nonce = stdlib_secrets.token_hex(8)
        self._env = _GuardedSandbox(undefined=StrictUndefined, autoescape=False)
        self._env.globals.clear()
        self._cache: dict[str, Any] = {}
        self._secret_values: dict[tuple[str, str], Secret] = {}

    @staticmethod
    def is_template(text: str) -> bool:
        return "{{" in text or "{%" in text or "{#" in text

    def render(
        self,
        text: str,
        pos: Pos,
        *,
        spec_dir: Path,
        secrets_allowed: bool,
        where: str,
        problems: list[Problem],
    ) -> str | Secret:
        """Render one leaf; problems are appended with ``pos`` and the leaf is returned as is."""
        leaf = _Leaf()
        try:
            template = self._compile(text)
            output: str = template.render(self._functions(leaf, spec_dir))
        except TemplateSyntaxError as error:
            problems.append(
                _at(pos, error.lineno).problem(f"template syntax error: {error.message}")
            )
            return text
        except SecurityError as error:
            problems.append(
                pos.problem(
                    f"template not allowed: {str(error).rstrip('.')}. Templates may only call "
                    "var(), secret(), "
                    "secret_file() and now(), and use plain values"
                )
            )
            return text
        except UndefinedError as error:
            problems.append(pos.problem(_undefined_message(str(error), leaf)))
            return text
        except _SecretFileError as error:
            problems.append(pos.problem(str(error)))
            return text
        except Exception as error:  # templates are user input: any failure is theirs to fix
            problems.append(pos.problem(f"template error: {type(error).__name__}: {error}"))
            return text
        if len(output) > MAX_RENDERED_CHARS:
            problems.append(
                pos.problem(f"template renders to more than {MAX_RENDERED_CHARS} characters")
            )
            return text
        if not leaf.placeholders:
            return output
        return self._settle_secrets(output, leaf, pos, secrets_allowed, where, problems)

    def _compile(self, text: str) -> Any:
        template = self._cache.get(text)
        if template is None:
            tree = self._env.parse(text)
            for node in tree.find_all(_FORBIDDEN_NODES):
                kind = type(node).__name__.lower()
                raise SecurityError(f"'{kind}' statements are not allowed in spec templates")
            template = self._env.from_string(tree)
            self._cache[text] = template
        return template

    def _functions(self, leaf: _Leaf, spec_dir: Path) -> dict[str, Callable[..., Any]]:
        def var(name: str, default: Any = _UNSET) -> str:
            value = self.options.variables.get(name)
            if value is None:
                value = self.options.environ.get(f"RUNNER_VAR_{name}")
            if value is None:
                if default is _UNSET:
                    leaf.missing_vars.append(name)
                    raise UndefinedError(f"variable '{name}' is not set")
                return str(default)
            return value

        def secret(name: str) -> str:
            value = self.options.environ.get(str(name))
            key = ("env", str(name))
            found = self._secret_values.get(key)
            if found is None:
                found = (
                    MissingSecret(f"the environment variable {name} is not set")
                    if value is None
                    else Secret(value)
                )
                self._secret_values[key] = found
            return self._placeholder(leaf, found)

        def secret_file(path: str) -> str:
            resolved = Path(os.path.expanduser(str(path)))
            if not resolved.is_absolute():
                resolved = spec_dir / resolved
            key = ("file", str(resolved))
            found = self._secret_values.get(key)
            if found is None:
                _check_reach(resolved, str(path), spec_dir, self.options.environ)
                found = _read_secret_file(resolved, str(path))
                self._secret_values[key] = found
            return self._placeholder(leaf, found)

        def now() -> dt.datetime:
            return self.options.now

        return {"var": var, "secret": secret, "secret_file": secret_file, "now": now}

    def _placeholder(self, leaf: _Leaf, value: Secret) -> str:
        marker = f"\x00{self._nonce}:{len(leaf.placeholders)}\x00"
        leaf.placeholders[marker] = value
        return marker

    def _settle_secrets(
        self,
        output: str,
        leaf: _Leaf,
        pos: Pos,
        secrets_allowed: bool,
        where: str,
        problems: list[Problem],
    ) -> str | Secret:
        if not secrets_allowed:
            problems.append(
                pos.problem(
                    f"a secret cannot be used in {where}: Coalesce keeps it in run history, "
                    "where anyone with access would read it. Secrets may appear only in "
                    "coalesce.token and under userCredentials"
                )
            )
            return "(secret)"
        missing = [s for s in leaf.placeholders.values() if isinstance(s, MissingSecret)]
        if missing:
            for secret in missing:
                message = f"secret not available: {secret.source}"
                if self.options.require_secrets:
                    problems.append(pos.problem(f"{message}; set it before applying"))
                else:
                    problems.append(pos.problem(message, severity="warning"))
            return missing[0]
        alone = leaf.placeholders.get(output)
        if alone is not None:
            return alone
        pattern = re.compile("|".join(re.escape(m) for m in leaf.placeholders))
        joined = pattern.sub(lambda m: leaf.placeholders[m.group()].reveal(), output)
        # Text glued to a secret (a "Bearer " prefix, say) is a secret as a whole.
        return Secret(joined)


class _SecretFileError(Exception):
    pass


SECRET_DIRS_ENV = "RUNNER_SECRET_DIRS"


def secret_roots(spec_dir: Path, environ: Mapping[str, str]) -> list[Path]:
    """Where ``secret_file`` may read: the spec's folder, the current folder, the home
    folder, and the folders listed in RUNNER_SECRET_DIRS (separated by ``os.pathsep``)."""
    roots = [spec_dir, Path.cwd(), Path.home()]
    roots += [Path(p).expanduser() for p in environ.get(SECRET_DIRS_ENV, "").split(os.pathsep) if p]
    return [root.resolve() for root in roots]


def _check_reach(path: Path, written: str, spec_dir: Path, environ: Mapping[str, str]) -> None:
    """A spec edited in a pull request must not read /etc/shadow into a credential: the
    real file (links followed) must lie under one of :func:`secret_roots`."""
    real = path.resolve()
    if any(real == root or root in real.parents for root in secret_roots(spec_dir, environ)):
        return
    raise _SecretFileError(
        f"secret_file('{written}'): {real} is outside the folders secret files may be read "
        f"from (the spec's folder, the current folder, the home folder); add its folder to "
        f"{SECRET_DIRS_ENV} to allow it"
    )


def _read_secret_file(path: Path, written: str) -> Secret:
    """Read a secret file: a regular file of at most 64 KiB of UTF-8 text."""
    if not path.exists():
        return MissingSecret(f"secret_file('{written}'): {path} does not exist")
    if not path.is_file():
        raise _SecretFileError(
            f"secret_file('{written}'): {path} is not a regular file; point it at the key file"
        )
    try:
        size = path.stat().st_size
        if size > MAX_SECRET_FILE_BYTES:
            raise _SecretFileError(
                f"secret_file('{written}'): {path} is {size:,} bytes; secret files are "
                f"limited to {MAX_SECRET_FILE_BYTES // 1024} KiB"
            )
        data = path.read_bytes()
    except OSError as error:
        raise _SecretFileError(
            f"secret_file('{written}'): cannot read {path}: {error.strerror or error}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _SecretFileError(
            f"secret_file('{written}'): {path} is not UTF-8 text (a DER key? convert it to PEM)"
        ) from None
    return Secret(text.strip("\ufeff"))


def _at(pos: Pos, template_line: int | None) -> Pos:
    """The position of a line inside a multi-line template."""
    if not template_line or template_line <= 1:
        return pos
    return Pos(pos.path, pos.line + template_line - 1, 1)


def _undefined_message(raw: str, leaf: _Leaf) -> str:
    if leaf.missing_vars:
        name = leaf.missing_vars[-1]
        return (
            f"variable '{name}' is not set: pass --var {name}=VALUE or set the environment "
            f"variable RUNNER_VAR_{name}, or give a default: var('{name}', default='...')"
        )
    match = re.match(r"'([^']+)' is undefined", raw)
    if match:
        name = match.group(1)
        return (
            f"undefined name '{name}' in template: templates can only use var(), secret(), "
            f"secret_file() and now(); for a value from --var write var('{name}')"
        )
    return f"template error: {raw}"
