"""Serving the simulator over a real socket with uvicorn."""

from __future__ import annotations

import importlib.util
import socket
from typing import Literal

import uvicorn

from runner.sim.app import SimApp

__all__ = ["HttpImplementation", "bind", "http_implementation", "serve", "server", "url_of"]

HttpImplementation = Literal["httptools", "h11"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free one).

    It listens before the server starts, so a client that connects as soon as the
    address is printed waits in the backlog instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it every answer waits on Nagle and the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def http_implementation() -> HttpImplementation:
    """The HTTP parser the server uses: httptools when installed (it costs the server
    less CPU per request), else h11."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def server(app: SimApp, *, http: HttpImplementation | None = None) -> uvicorn.Server:
    """A uvicorn server of ``app``, not yet started.

    ``http`` picks uvicorn's HTTP implementation (default: :func:`http_implementation`).
    Both hand the application a ``send`` bound to a request cycle that holds the
    connection's transport, which is what dropping a connection needs. The event loop is
    uvloop when installed.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        http=http or http_implementation(),
        loop="auto",
        ws="none",
        lifespan="off",
    )
    return uvicorn.Server(config)


def serve(app: SimApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted (Ctrl-C or SIGTERM)."""
    server(app).run(sockets=[sock])
