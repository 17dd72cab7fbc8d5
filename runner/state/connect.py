"""Opening the SQLite file: pragmas, migrations, read-only access, and SQLite errors
turned into messages a person can act on.

Durability: WAL with ``synchronous=FULL``. Every journal write is committed before the
network call it announces (alone, or with others in a batch: the rule is in
:mod:`runner.state.store`). A commit reaches the WAL file
with ``write()``, so it survives the process being SIGKILLed even with ``NORMAL``;
``FULL`` adds an fsync per commit so that it also survives a power cut or a kernel
crash, which would otherwise lose the last intents and let a resumed apply fire a run
twice. An fsync costs milliseconds; each commit sits next to an HTTP round trip.

Sharing: several processes may use one state file (WAL lets readers run alongside the
writer). Writers take the write lock up front (``BEGIN IMMEDIATE``) and wait for
each other up to :data:`BUSY_TIMEOUT_SECONDS`. WAL needs a local filesystem: a state
file on NFS or SMB is not supported.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import RunnerError
from runner.state import schema
from runner.state.location import StateLocation

BUSY_TIMEOUT_SECONDS = 15.0


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    connection = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,  # we issue BEGIN / COMMIT ourselves
        check_same_thread=False,  # guarded by SqlState's mutex
        uri=uri,
    )
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return connection


def connect_readwrite(path: Path) -> sqlite3.Connection:
    _private_file(path)
    connection = _connect(str(path))
    try:
        schema.check_ours(connection, path)  # before changing anything in a foreign file
        _use_wal(connection, path)
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        schema.migrate(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _private_file(path: Path) -> None:
    """The state holds who applied what, where: readable by its owner only. A new folder
    is made 0700 and a new file 0600 (SQLite gives its -wal and -shm files the file's
    permissions); an existing file readable by others is tightened."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & 0o077 and path.stat().st_uid == os.getuid():
            with contextlib.suppress(OSError):
                path.chmod(stat.S_IMODE(mode) & 0o700)
    except OSError as error:
        raise RunnerError(
            f"cannot create the state at {path}: {error.strerror or error}",
            hint="point --state (or RUNNER_STATE) at a writable path",
        ) from None
    else:
        os.close(fd)


def _use_wal(connection: sqlite3.Connection, path: Path) -> None:
    """Switch a new state file to WAL (a setting stored in the file, kept from then on).

    The switch needs the file to itself, and SQLite reports a conflict at once instead
    of waiting for the busy timeout: so when several processes create the same state
    at the same moment, retry until it is done (by us or by another one).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = 0.005
    while True:
        try:
            mode = str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
    if mode.lower() != "wal":
        raise RunnerError(
            f"cannot use write-ahead logging for the state at {path} (got {mode!r})",
            hint="keep the state on a local filesystem",
        )


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Read the state without writing anything, also where nothing may be written: a
    read-only file in a read-only folder (a mounted copy, a CI cache, another user's
    state)."""
    if not path.exists():
        return _in_memory_copy(None, path)
    try:
        return _open_readonly(path, "mode=ro")
    except sqlite3.OperationalError as error:
        if not _cannot_write_beside(error):
            raise
    # Reading a WAL file in read-only mode needs its -shm index, which SQLite cannot
    # create in a read-only folder. With no -wal file, every commit is in the main
    # file, so it can be read as immutable; with one, those commits would be missed.
    if _has_pending_log(path):
        raise RunnerError(
            f"cannot read the state at {path}: its folder is read-only and it holds "
            f"changes not yet merged into the file ({path.name}-wal)",
            hint="run `runner status` once where the state's folder is writable (this "
            "merges them), or copy the state with its -wal file to a writable folder",
        )
    return _open_readonly(path, "immutable=1")


def _cannot_write_beside(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return "readonly" in text or "unable to open" in text


def _has_pending_log(path: Path) -> bool:
    log = path.with_name(path.name + "-wal")
    return log.exists() and log.stat().st_size > 0


def _open_readonly(path: Path, mode: str) -> sqlite3.Connection:
    connection = _connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
    try:
        version = schema.check_ours(connection, path)
        if version < schema.LATEST_VERSION:
            return _in_memory_copy(connection, path)
        connection.execute("PRAGMA query_only = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def empty_state_connection() -> sqlite3.Connection:
    """A connection to an empty, migrated state in memory, never saved."""
    return _in_memory_copy(None, Path(":memory:"))


def _in_memory_copy(source: sqlite3.Connection | None, path: Path) -> sqlite3.Connection:
    """A private, migrated copy of ``source`` (or an empty state) that is never saved."""
    memory = _connect(":memory:")
    if source is not None:
        source.backup(memory)
        source.close()
    schema.migrate(memory, path)
    return memory


@contextmanager
def sqlite_errors(path: StateLocation, doing: str) -> Iterator[None]:
    """SQLite errors a user can act on (busy, unreadable, not a database, disk full)
    become a RunnerError naming the state file."""
    try:
        yield
    except sqlite3.OperationalError as error:
        text = str(error)
        if "locked" in text or "busy" in text:
            raise RunnerError(
                f"the state at {path} is busy: another runner process kept it locked "
                f"for more than {BUSY_TIMEOUT_SECONDS:g}s",
                hint="try again; if it persists, look for a hung runner process",
            ) from error
        if "readonly" in text:
            raise RunnerError(
                f"cannot {doing} the state at {path} for writing: the file or its folder "
                "is read-only, and this command records what it does there",
                hint="make both writable by this user, or point --state (or "
                "RUNNER_STATE) at a writable path; plan, status and validate only read",
            ) from error
        raise RunnerError(
            f"cannot {doing} the state at {path}: {text}",
            hint="check the path given by --state or RUNNER_STATE, its permissions and "
            "free disk space",
        ) from error
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            raise  # our bug, not the user's
        raise RunnerError(
            f"cannot {doing} the state at {path}: {error}",
            hint="the file is damaged or is not a runner state; restore it from a backup "
            "or point --state at a new path",
        ) from error
