"""The built-in demo world (``demo_world.yaml`` next to this module)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from runner.sim.world import World, parse_world

__all__ = ["DEMO_TOKEN", "demo_world", "demo_world_text"]

DEMO_TOKEN = "sim-demo-token"


def demo_world_text() -> str:
    """The demo world file's text (also an example of the format)."""
    return resources.files("runner.sim").joinpath("demo_world.yaml").read_text(encoding="utf-8")


@cache
def demo_world() -> World:
    """The demo world: a retail star schema in environments dev (1), prod (2) and qa (3,
    Failed Deploy)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(demo_world_text())
    return parse_world(data, source="demo world")
