"""The shape of the package: no import cycles, and the lower layers never reach up.

Every ``import`` in ``runner/`` is read from the source (function-local ones included;
only imports under ``if TYPE_CHECKING:`` are left out of the cycle check, since they
never run), and each names the module it loads: ``from runner.spec import models`` is
an import of ``runner.spec.models``, ``from runner.spec import SpecSet`` one of the
package ``runner.spec``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import runner

ROOT = Path(runner.__file__).parent

#: The layers that stand on their own: none of them may import what is built on them.
FOUNDATIONS = ("coalesce", "state", "spec", "selectors")
BUILT_ON_THEM = (
    "sim",
    "apply",
    "plan",
    "render",
    "commands",
    "operations",
    "runtime",
    "importing",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in ROOT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, typing_only: bool) -> Iterator[str]:
    """The runner modules ``module`` imports (with those only for type checkers or not)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    guarded = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if not typing_only and id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            yield from _from_targets(node, package)


def _from_targets(node: ast.ImportFrom, package: str) -> Iterator[str]:
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in MODULES:
            yield submodule
        elif base in MODULES:
            yield base


def _graph(*, typing_only: bool) -> dict[str, set[str]]:
    return {module: set(_imports(module, typing_only=typing_only)) - {module} for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert _cycles(_graph(typing_only=False)) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", FOUNDATIONS)
def test_a_foundation_never_imports_what_is_built_on_it(layer: str) -> None:
    graph = _graph(typing_only=True)
    upward = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith(f"runner.{layer}")
        for target in targets
        if target.split(".")[1] in BUILT_ON_THEM
    }
    assert upward == set()


def test_the_reading_of_imports_sees_local_and_relative_ones() -> None:
    imports = set(_imports("runner.runtime", typing_only=False))
    assert {"runner.coalesce", "runner.sim", "runner.coalesce.urls"} <= imports


def _subclasses(base: type) -> Iterator[tuple[type, type]]:
    sub: type
    for sub in base.__subclasses__():
        yield base, sub
        yield from _subclasses(sub)


def test_the_error_tree_drawn_in_errors_py_is_the_real_one() -> None:
    """Every error a person can be shown is drawn, under its real parent, so that a
    reader of ``runner/errors.py`` learns the whole family from one place."""
    import importlib

    import runner.errors

    for name in MODULES:
        if not name.endswith("__main__"):  # running it would start the CLI
            importlib.import_module(name)
    drawn: dict[str, str] = {}  # class -> its parent, as the drawing shows them
    parents: list[tuple[int, str]] = []
    for line in (runner.errors.__doc__ or "").splitlines():
        words = line.translate(str.maketrans("│├└─", "    ")).split()
        if not line.startswith("    ") or not words or not words[0].isidentifier():
            continue
        depth = line.index(words[0])
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if parents:
            drawn[words[0]] = parents[-1][1]
        parents.append((depth, words[0]))
    real = {
        sub.__name__: base.__name__
        for base, sub in _subclasses(runner.errors.RunnerError)
        if sub.__module__.startswith("runner.") and not sub.__module__.startswith("runner.sim")
    }
    assert drawn == real
