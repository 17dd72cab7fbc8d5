"""Colour on a terminal only, unless NO_COLOR or FORCE_COLOR says otherwise."""

from __future__ import annotations

import io

import pytest

from runner.render import use_color
from tests.render._screen import FakeStream


@pytest.mark.parametrize(
    ("tty", "environ", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # https://no-color.org: only a non-empty value counts
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": "0"}, False),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_use_color(tty: bool, environ: dict[str, str], expected: bool) -> None:
    assert use_color(FakeStream(tty), environ=environ) is expected


def test_a_closed_or_odd_stream_gets_no_colour() -> None:
    closed = io.StringIO()
    closed.close()
    assert use_color(closed, environ={}) is False
    assert use_color(object(), environ={}) is False
