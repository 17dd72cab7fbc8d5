"""A local, faithful imitation of the Coalesce API (``runner sim``, ``sim://``).

The simulator answers the scheduler and read endpoints of Coalesce from a *world*
(environments, nodes, jobs, tokens, run behaviour; see ``docs/simulator.md``). Runs are
scheduled when they are created and observed on a clock, so nothing runs in the
background: the same app serves over a socket (uvicorn) and in-process
(``httpx.ASGITransport``).

    app = create_app(load_world("world.yaml"), clock=ManualClock(), seed=7)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        ...
    app.clock.advance(5)
"""

from __future__ import annotations

import os
import threading

from runner.sim.app import SimApp, SimulatedDisconnect, create_app
from runner.sim.clock import Clock, ManualClock, SimClock
from runner.sim.demo import DEMO_TOKEN, demo_world, demo_world_text
from runner.sim.world import World, WorldError, load_world, parse_world

__all__ = [
    "DEMO_TOKEN",
    "SPEED_ENV",
    "WORLD_ENV",
    "Clock",
    "ManualClock",
    "SimApp",
    "SimClock",
    "SimulatedDisconnect",
    "World",
    "WorldError",
    "create_app",
    "demo_world",
    "demo_world_text",
    "embedded_app",
    "load_world",
    "parse_world",
]

#: Environment variables read once, when the embedded simulator is first used.
WORLD_ENV = "RUNNER_SIM_WORLD"
SPEED_ENV = "RUNNER_SIM_SPEED"

_embedded: SimApp | None = None
_embedded_lock = threading.Lock()


def embedded_app() -> SimApp:
    """The process-wide simulator behind ``sim://`` URLs.

    It serves the demo world at speed 1, unless ``RUNNER_SIM_WORLD`` names a world file
    or ``RUNNER_SIM_SPEED`` sets another speed.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            world = os.environ.get(WORLD_ENV) or None
            _embedded = create_app(world, clock=SimClock(_speed_from_env()))
        return _embedded


def _speed_from_env() -> float:
    text = os.environ.get(SPEED_ENV, "").strip()
    if not text:
        return 1.0
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise WorldError(
            f"{SPEED_ENV}={text!r} is not a speed",
            hint="Set it to a number greater than 0, e.g. 10 for ten times faster.",
        )
    return speed
