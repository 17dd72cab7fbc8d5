"""Opening the state, whichever backend its location names."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from runner.errors import RunnerError
from runner.state.location import PostgresLocation, StateLocation, is_postgres_url
from runner.state.location import postgres_location as _postgres_location
from runner.state.locks import pid_alive
from runner.state.sqlite import open_sqlite_state
from runner.state.store import Clock, SqlState, utc_now


def open_state(
    path: StateLocation | str,
    *,
    readonly: bool = False,
    clock: Clock = utc_now,
    hostname: str | None = None,
    is_alive: Callable[[int], bool] = pid_alive,
) -> SqlState:
    """Open (creating, migrating) the state at ``path``: a SQLite file, or a
    ``postgresql://`` URL (as a string or as :func:`~runner.state.state_path` gives it).

    Read-only, nothing is created or migrated: a state that does not exist yet reads as
    empty (plan on a fresh checkout).

    ``hostname`` is this machine's name, to tell whether a lock's holder runs here (its
    pid can then be checked); ``is_alive`` checks a pid. Both are injectable for tests.
    """
    if isinstance(path, str) and is_postgres_url(path):
        path = _postgres_location(path)
    host = hostname if hostname is not None else socket.gethostname()
    if isinstance(path, PostgresLocation):
        return _postgres_opener()(path, readonly=readonly, clock=clock)
    return open_sqlite_state(
        Path(path), readonly=readonly, clock=clock, hostname=host, is_alive=is_alive
    )


def _postgres_opener() -> Callable[..., SqlState]:
    """The PostgreSQL backend, imported only when asked for (psycopg is an extra)."""
    try:
        from runner.state.postgres import open_postgres_state
    except ImportError as error:
        if not (error.name or "").startswith("psycopg"):
            raise
        raise RunnerError(
            "a postgresql:// state needs the PostgreSQL driver, which is not installed: "
            "pip install 'runner[postgres]'"
        ) from None
    return open_postgres_state
