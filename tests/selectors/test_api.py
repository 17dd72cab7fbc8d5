"""The names other packages import from ``runner.selectors`` stay where they are."""

from __future__ import annotations

import runner.selectors


def test_the_public_names_are_exported() -> None:
    required = {
        "parse_selector",
        "canonical",
        "canonical_text",
        "lint_selector",
        "SelectorError",
        "SelectorWarning",
        "Node",
        "NodeGraph",
        "resolve",
        "select",
    }
    assert required <= set(runner.selectors.__all__)
    for name in runner.selectors.__all__:
        assert getattr(runner.selectors, name) is not None
