"""How the core reaches the world: the transport to Coalesce (or to the embedded
simulator), the environment variables, and whether signal handlers are installed.

This module sits above both the Coalesce client and the simulator: the client knows
nothing of the simulator, and is handed one through httpx's public ``mounts``: a spec
whose ``coalesce.url`` is ``sim://`` talks to the simulator in this process. Tests
replace the transport (``httpx.MockTransport``, ``httpx.ASGITransport``) here.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import httpx

from runner.coalesce import ClientPool
from runner.coalesce.urls import SIM_URL

__all__ = ["SIMULATOR", "EmbeddedSimulator", "Runtime", "on_own_loop"]

P = ParamSpec("P")
R = TypeVar("R")


def on_own_loop(function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The blocking form of an ``async`` entry point: the same call, run on an event loop
    of its own (``asyncio.run``). One implementation serves both the command line and
    callers inside a running loop, who await the ``async`` one."""

    @functools.wraps(function)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(function(*args, **kwargs))

    return blocking


class EmbeddedSimulator(httpx.AsyncBaseTransport):
    """The simulator of this process (``runner.sim.embedded_app()``, whichever it is at
    the time of each request), as a transport. It is imported on the first request, so
    that commands on real Coalesce URLs never load it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from runner.sim import embedded_app  # loaded only when a spec says sim://

        transport = httpx.ASGITransport(app=embedded_app())
        return await transport.handle_async_request(request)


#: The transport ``sim://`` is mounted on (a test may put a faulty simulator there).
SIMULATOR: httpx.AsyncBaseTransport = EmbeddedSimulator()


@dataclass
class Runtime:
    """How a command reaches the world; tests replace the transport."""

    transport: httpx.AsyncBaseTransport | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    install_signal_handlers: bool = True

    def pool(self, **options: Any) -> ClientPool:
        """A :class:`ClientPool` on this runtime: its transport, its environment, and the
        embedded simulator mounted at ``sim://``."""
        return ClientPool(
            transport=self.transport, environ=self.environ, mounts=self.mounts(), **options
        )

    @staticmethod
    def mounts() -> dict[str, httpx.AsyncBaseTransport]:
        """The transports by URL that are not the network: ``sim://``."""
        return {SIM_URL: SIMULATOR}
