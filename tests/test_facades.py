"""Each package's facade: what ``__all__`` names is exactly what the package gives."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = (
    "runner",
    "runner.apply",
    "runner.coalesce",
    "runner.importing",
    "runner.operations",
    "runner.plan",
    "runner.render",
    "runner.selectors",
    "runner.sim",
    "runner.spec",
    "runner.state",
)
# Bound by ``from __future__ import annotations`` and typing guards, not exports.
_NOT_EXPORTS = {"annotations", "TYPE_CHECKING"}


def _given(package: ModuleType) -> set[str]:
    """The public names bound in the package that are runner's own (not a submodule, and
    not a helper imported from elsewhere, such as ``typing.Any``)."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and name not in _NOT_EXPORTS
        and not isinstance(value, ModuleType)
        and str(getattr(value, "__module__", "runner")).partition(".")[0] == "runner"
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_a_facade_gives_every_name_it_lists_and_lists_every_name_it_gives(name: str) -> None:
    package = importlib.import_module(name)
    listed = set(package.__all__)
    assert len(listed) == len(package.__all__), "a name is listed twice"
    unresolved = {n for n in listed if getattr(package, n, None) is None}
    assert unresolved == set()
    assert _given(package) - listed == set()  # nothing public that is not listed


def test_a_run_key_is_written_and_read_back_the_same_way() -> None:
    from runner.identity import RunKey

    key = RunKey("prod", "loads/nightly")  # a run's name may hold a slash
    assert str(key) == "prod/loads/nightly"
    assert RunKey.parse(str(key)) == key
    assert RunKey.parse("no-slash") is None
