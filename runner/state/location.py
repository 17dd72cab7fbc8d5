"""Where the state lives: ``--state``, else ``RUNNER_STATE``, else ``.runner/state.db``.

A value starting with ``postgresql://`` or ``postgres://`` is a PostgreSQL state; any
other value is the path of a SQLite file. The URL is handed to libpq as given, so that
libpq's own settings work as usual (``PGHOST``, ``PGUSER``, ``PGPASSWORD``,
``PGSSLMODE``, ``~/.pgpass``, ``sslmode=`` in the URL), with one exception: a
``schema=`` query parameter, which is runner's (the schema the state lives in, default
``runner``) and is taken out before connecting.

A password in the URL (or in a ``password=`` parameter, or in ``PGPASSWORD``) is a
secret: it is registered as one, and the URL is only ever shown as
``postgresql://user@host:5432/db``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from runner.errors import RunnerError
from runner.secrets import KNOWN_SECRETS

DEFAULT_STATE_PATH = Path(".runner") / "state.db"
STATE_ENV_VAR = "RUNNER_STATE"
DEFAULT_SCHEMA = "runner"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class PostgresLocation:
    """A PostgreSQL state: what to connect to, and the schema it lives in."""

    conninfo: str = field(repr=False)  # what libpq gets: may hold a password
    schema: str
    shown: str  # the URL without password or query: safe to show and to store

    def exists(self) -> bool:
        """A database is always there to ask (a missing schema reads as empty)."""
        return True

    def __str__(self) -> str:
        return self.shown


StateLocation = Path | PostgresLocation


def is_postgres_url(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


def postgres_location(url: str, environ: Mapping[str, str] = os.environ) -> PostgresLocation:
    """Parse a ``postgresql://`` URL: take out ``schema=``, register its passwords."""
    parts = urlsplit(url)
    query = _query(parts.query)
    schemas = [value for key, value, _ in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    for password in (
        parts.password,  # as written in the URL: percent-escaped
        unquote(parts.password or ""),  # as libpq reads it, and may show it
        *(form for key, value, raw in query if key == "password" for form in (value, raw)),
        environ.get("PGPASSWORD"),
    ):
        if password:
            KNOWN_SECRETS.register(password)
    shown = shown_url(url)
    if not _SCHEMA_NAME.fullmatch(schema):
        raise RunnerError(
            f"the state URL {shown} names the schema {schema!r}, which is not a plain "
            "lowercase name",
            hint="use letters a-z, digits and _ in schema= (for example schema=runner)",
        )
    # The rest of the query goes to libpq as it reads it, encoded again the only way
    # libpq decodes (a space as %20, never +; a stray % as %25).
    kept = "&".join(
        f"{quote(key, safe='')}={quote(value, safe='')}"
        for key, value, _ in query
        if key != "schema"
    )
    conninfo = urlunsplit(parts._replace(query=kept))
    return PostgresLocation(conninfo=conninfo, schema=schema, shown=shown)


def _query(text: str) -> list[tuple[str, str, str]]:
    """A URL's query as libpq reads it: ``(key, value, the pair as written)`` for each
    ``key=value`` between ``&``, percent-decoded (a ``+`` stays a ``+``)."""
    pairs = []
    for raw in text.split("&"):
        if raw:
            key, _, value = raw.partition("=")
            pairs.append((unquote(key), unquote(value), raw))
    return pairs


def shown_url(url: str) -> str:
    """``postgresql://user@host:5432/db``: the URL without its password and query."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def state_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> StateLocation:
    """The state to use: a PostgreSQL URL, or a file (relative to the current folder).

    An empty ``--state`` or ``RUNNER_STATE`` counts as not given (CI systems often set
    a variable to an empty string rather than leaving it out).
    """
    for given in (cli_value, environ.get(STATE_ENV_VAR)):
        if given:
            if is_postgres_url(given):
                return postgres_location(given, environ)
            return Path(given).expanduser()
    return DEFAULT_STATE_PATH
