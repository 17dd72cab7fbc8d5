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

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_environment,
    pass_eval_context,
)
from jinja2 import filters as jinja_filters
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from runner.errors import Problem
from runner.secrets import Secret
from runner.spec.located import work_tree_root
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


class UnreadSecret(Secret):
    """A secret a template names but that is never read: a baseline (``--against``) is
    only compared, never sent, so ``secret()`` and ``secret_file()`` there touch neither
    the environment nor the filesystem. Shown as ``(secret)``, like any secret."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        super().__init__("")
        self.source = source


@dataclass
class RenderOptions:
    """What templates may read. ``environ`` is injectable so tests need no monkeypatching.

    With ``read_secrets`` false, secrets are :class:`UnreadSecret` placeholders."""

    variables: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    require_secrets: bool = False
    read_secrets: bool = True


# Methods whose width argument can allocate without bound ('{:>999999999}'.format(1)).
_UNSAFE_METHODS = frozenset(
    ["format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs"]
)
# A %-format field: its width and precision (or '*', taken from the arguments).
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")
MAX_WIDTH = 10_000
MAX_INT_BITS = 64 * 1024
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
    # Assignments would let a template double a value many times over with '~'.
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
)


class TemplateTooLarge(Exception):
    """An operation would build a value larger than templates may make."""


def _limit(size: int, what: str, limit: int = MAX_RENDERED_CHARS) -> None:
    """Refuse, before allocating, an operation that would build ``size`` characters."""
    if size > limit:
        raise TemplateTooLarge(f"{what} would build about {size:,} characters (at most {limit:,})")


def _size(value: Any) -> int:
    """Roughly how many characters ``value`` takes (a list counts its items)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(_size(item) for item in value)
    return 1


def _check_percent(template: str, what: str) -> None:
    for width, precision in _PERCENT_FIELD.findall(template):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_WIDTH):
                raise TemplateTooLarge(
                    f"{what} has a width or precision of {number} (at most {MAX_WIDTH:,})"
                )


def _center(value: Any, width: int = 80) -> str:
    _limit(int(width), "center()")
    return jinja_filters.do_center(value, width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    lines = str(s).count("\n") + 1
    step = len(width) if isinstance(width, str) else int(width)
    _limit(len(str(s)) + step * lines, "indent()")
    return jinja_filters.do_indent(s, width, first, blank)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_percent(str(value), "format()")
    _limit(len(str(value)) + sum(_size(a) for a in (*args, *kwargs.values())), "format()")
    return jinja_filters.do_format(value, *args, **kwargs)


@pass_environment
def _wordwrap(
    environment: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    breaks = len(wrapstring) if wrapstring is not None else 2
    _limit(len(str(s)) * (1 + breaks), "wordwrap()")
    return jinja_filters.do_wordwrap(
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


@pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_text = str(s), str(old)
    found = text.count(old_text) if old_text else len(text) + 1
    if count is not None:
        found = min(found, max(int(count), 0))
    _limit(len(text) + found * len(str(new)), "replace()")
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@pass_environment
def _truncate(
    env: Any,
    s: Any,
    length: int = 255,
    killwords: bool = False,
    end: str = "...",
    leeway: int | None = None,
) -> str:
    _limit(int(length) + int(leeway or 0), "truncate()")
    return jinja_filters.do_truncate(env, s, length, killwords, end, leeway)


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    _limit(int(linecount), "batch()", MAX_REPEAT)  # the last batch is filled up to it
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Any:
    _limit(int(slices), "slice()", MAX_REPEAT)  # one list per slice, even when empty
    return jinja_filters.sync_do_slice(value, slices, fill_with)


#: Filters that can build a large value, each bounded before it allocates.
_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "truncate": _truncate,
    "batch": _batch,
    "slice": _slice,
}


class _GuardedSandbox(SandboxedEnvironment):
    """The standard sandbox, plus limits on what can exhaust memory or time."""

    intercepted_binops = frozenset(["*", "**", "%", "+"])

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
            if isinstance(left, str):
                _check_percent(left, "a %-format")
                _limit(len(left) + _size(right), "a %-format")
            return operator.mod(left, right)
        if op == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        if op == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and count * max(_size(seq), 1) > MAX_REPEAT:
                    raise TemplateTooLarge(
                        f"repeating a value {count} times would build about "
                        f"{count * _size(seq):,} characters (at most {MAX_REPEAT:,})"
                    )
            if isinstance(left, int) and isinstance(right, int):
                _limit(left.bit_length() + right.bit_length(), "a product", MAX_INT_BITS)
            return operator.mul(left, right)
        if op == "+" and isinstance(left, str | list | tuple):
            _limit(_size(left) + _size(right), "joining two values with '+'")
        return super().call_binop(context, op, left, right)


def _check_power(base: Any, exponent: Any) -> None:
    """``base ** exponent`` is refused before it is computed when either is too large."""
    if isinstance(exponent, int) and abs(exponent) > MAX_EXPONENT:
        raise TemplateTooLarge(f"the exponent {exponent} is larger than {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        _limit(max(abs(base).bit_length(), 1) * exponent, "a power", MAX_INT_BITS)


@dataclass
class _Leaf:
    """What one render of one string leaf used."""

    placeholders: dict[str, Secret] = field(default_factory=dict)
    missing_vars: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)  # where each weak secret came from


class Renderer:
    """Renders the string leaves of the specs of one load, with one frozen ``now()``."""

    def __init__(self, options: RenderOptions) -> None:
        self.options = options
        self._nonce = stdlib_secrets.token_hex(8)
        self._env = _GuardedSandbox(undefined=StrictUndefined, autoescape=False)
        self._env.globals.clear()
        self._env.filters.update(_BOUNDED_FILTERS)
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
        except TemplateTooLarge as error:
            problems.append(
                pos.problem(f"template builds too large a value: {error}; make the value smaller")
            )
            return text
        except (_SecretFileError, _SecretEnvNotAllowed) as error:
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
        for source in leaf.weak:
            problems.append(pos.problem(weak_secret_warning(source), severity="warning"))
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
            if not self.options.read_secrets:
                return self._placeholder(leaf, UnreadSecret(f"secret('{name}')"))
            _check_secret_env(str(name), self.options.environ)
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
                if value is not None and is_weak_secret(value):
                    leaf.weak.append(f"the environment variable {name}")
            return self._placeholder(leaf, found)

        def secret_file(path: str) -> str:
            if not self.options.read_secrets:
                return self._placeholder(leaf, UnreadSecret(f"secret_file('{path}')"))
            resolved = Path(os.path.expanduser(str(path)))
            if not resolved.is_absolute():
                resolved = spec_dir / resolved
            key = ("file", str(resolved))
            found = self._secret_values.get(key)
            if found is None:
                _check_reach(resolved, str(path), spec_dir, self.options.environ)
                found = _read_secret_file(resolved, str(path))
                self._secret_values[key] = found
                if not isinstance(found, MissingSecret) and is_weak_secret(found.reveal()):
                    leaf.weak.append(f"secret_file('{path}')")
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
        unread = [s for s in leaf.placeholders.values() if isinstance(s, UnreadSecret)]
        if unread:
            return unread[0]  # nothing was read: there is nothing to join
        alone = leaf.placeholders.get(output)
        if alone is not None:
            return alone
        pattern = re.compile("|".join(re.escape(m) for m in leaf.placeholders))
        joined = pattern.sub(lambda m: leaf.placeholders[m.group()].reveal(), output)
        # Text glued to a secret (a "Bearer " prefix, say) is a secret as a whole.
        return Secret(joined)


class _SecretFileError(Exception):
    pass


#: A secret shorter than this is easy to guess and hard to recognise in text.
WEAK_SECRET_LENGTH = 8
#: Secrets that are words: guessable, and found inside ordinary text.
_COMMON_WORDS = frozenset(
    [
        "password",
        "passw0rd",
        "p@ssw0rd",
        "secret",
        "changeme",
        "change_me",
        "default",
        "letmein",
        "welcome",
        "qwerty",
        "qwertyuiop",
        "asdfgh",
        "asdfghjkl",
        "zxcvbnm",
        "admin",
        "administrator",
        "root",
        "toor",
        "guest",
        "user",
        "login",
        "test",
        "testing",
        "tester",
        "example",
        "sample",
        "demo",
        "token",
        "apikey",
        "api_key",
        "master",
        "dragon",
        "monkey",
        "shadow",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "iloveyou",
        "trustno1",
        "abc123",
        "abcdef",
        "abcdefg",
        "abcdefgh",
        "snowflake",
        "coalesce",
        "production",
        "staging",
        "development",
        "prod",
        "stage",
        "dev",
        "local",
        "true",
        "false",
        "null",
        "none",
        "undefined",
        "nil",
        "empty",
        "run",
        "runs",
        "stop",
        "continue",
        "pending",
        "running",
        "completed",
        "failed",
        "canceled",
        "cancelled",
        "environment",
        "parameters",
        "default",
    ]
)


def is_weak_secret(value: str) -> bool:
    """Shorter than 8 characters, all digits, or a common word (any case)."""
    text = value.strip()
    return (
        len(text) < WEAK_SECRET_LENGTH
        or text.isdigit()
        or text.lower().rstrip("0123456789!") in _COMMON_WORDS
    )


def weak_secret_warning(source: str) -> str:
    """The warning for a weak secret: says where it came from, never what it is."""
    return (
        f"the secret from {source} is weak (shorter than {WEAK_SECRET_LENGTH} characters, "
        "all digits, or a common word): it is easy to guess and cannot be told apart "
        "from ordinary text in what Coalesce sends back. Use a long random value"
    )


class _SecretEnvNotAllowed(Exception):
    pass


#: Where ``secret()`` may read: environment variables whose names start with these...
SECRET_ENV_PREFIXES = ("COALESCE_", "SNOWFLAKE_", "RUNNER_SECRET_")
#: ...and those the operator lists here (comma-separated; a name, or a prefix ending in *).
SECRET_ENV_ALLOW = "RUNNER_SECRET_ENV"


def secret_env_allowed(name: str, environ: Mapping[str, str]) -> bool:
    """Whether a spec may read the environment variable ``name`` with ``secret()``.

    The list is the operator's (CI's), never the spec's: a pull request must not be able
    to send ``AWS_SECRET_ACCESS_KEY`` or ``GITHUB_TOKEN`` to Coalesce as a password."""
    if name.startswith(SECRET_ENV_PREFIXES):
        return True
    for entry in environ.get(SECRET_ENV_ALLOW, "").split(","):
        entry = entry.strip()
        if entry.endswith("*") and len(entry) > 1 and name.startswith(entry[:-1]):
            return True
        if entry and entry == name:
            return True
    return False


def _check_secret_env(name: str, environ: Mapping[str, str]) -> None:
    if secret_env_allowed(name, environ):
        return
    raise _SecretEnvNotAllowed(
        f"secret('{name}') reads an environment variable secrets may not come from: "
        f"secret() reads only names starting with {', '.join(SECRET_ENV_PREFIXES)} and "
        f"those listed in {SECRET_ENV_ALLOW}. Rename the variable (e.g. "
        f"RUNNER_SECRET_{name}) or have CI allow it: {SECRET_ENV_ALLOW}={name}"
    )


SECRET_DIRS_ENV = "RUNNER_SECRET_DIRS"


def secret_roots(spec_dir: Path, environ: Mapping[str, str]) -> list[Path]:
    """Where ``secret_file`` may read: the spec's folder and the git work tree it is in,
    the current folder, the home folder, and the folders listed in RUNNER_SECRET_DIRS
    (separated by ``os.pathsep``)."""
    roots = [spec_dir, work_tree_root(spec_dir), Path.cwd(), Path.home()]
    roots += [Path(p).expanduser() for p in environ.get(SECRET_DIRS_ENV, "").split(os.pathsep) if p]
    # A root that is the filesystem's own (HOME=/ in some containers, a job run from /)
    # would allow every file, /proc/self/environ included: it allows nothing instead.
    return [root for root in (r.resolve() for r in roots) if root != root.parent]


def _check_reach(path: Path, written: str, spec_dir: Path, environ: Mapping[str, str]) -> None:
    """A spec edited in a pull request must not read /etc/shadow into a credential: the
    real file (links followed) must lie under one of :func:`secret_roots`."""
    real = path.resolve()
    if any(real == root or root in real.parents for root in secret_roots(spec_dir, environ)):
        return
    raise _SecretFileError(
        f"secret_file('{written}'): {real} is outside the folders secret files may be read "
        "from (the spec's folder and its git work tree, the current folder, the home "
        f"folder); add its folder to {SECRET_DIRS_ENV} to allow it"
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
    return Secret(_without_final_newline(text.strip("\ufeff")))


def _without_final_newline(text: str) -> str:
    """Exactly one trailing newline (``\\n`` or ``\\r\\n``) removed, as editors and
    ``echo`` add one to a file holding a password; anything else is part of the secret."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


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
