"""A real PostgreSQL server for the tests: one per test session, started on first use.

It runs from the machine's PostgreSQL (``initdb`` and ``pg_ctl`` on PATH, else from
``pg_config --bindir``, else ``/usr/lib/postgresql/*/bin``), in a temporary folder, on a
free loopback port. PostgreSQL refuses to run as root: as root, it runs as the
``postgres`` system user. Connections are over TCP with a password, which is a canary:
tests check that it never shows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Long and unusual, so that finding it anywhere means it leaked.
PASSWORD = "pg-canary-7Qz9vW3kLm2Xr8Tn"
USER = "postgres"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    durable: bool = False
    _databases: int = field(default=0)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", USER, "--", *command] if os.geteuid() == 0 else list(command)

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, USER)
            shutil.chown(password_file, USER)
        subprocess.run(
            self._as_owner(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--pwfile",
                str(password_file),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ),
            check=True,
            capture_output=True,
            timeout=300,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "shared_buffers": "32MB",
            "max_connections": "200",
        }
        if not self.durable:
            # The tests need commits to reach the OS (an immediate stop loses nothing),
            # not the disk: no fsync, on a machine shared with other test runs.
            settings |= {"fsync": "off", "full_page_writes": "off"}
        else:
            # The benchmarks compare with SQLite's synchronous=FULL: every commit on disk
            # (PostgreSQL's defaults). Lock waits over 10 ms are logged, to be counted.
            settings |= {"log_lock_waits": "on", "deadlock_timeout": "'10ms'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._pg_ctl("-w", "-l", str(self.root / "log"), "start")

    def log(self) -> str:
        """The server's log so far."""
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def url(self, database: str = "postgres", *, user: str = USER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self) -> str:
        self._databases += 1
        name = f"test_{self._databases}"
        with self.admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        return name


def start_server(*, durable: bool = False) -> PgServer | None:
    """A running server, or ``None`` if PostgreSQL is not installed here. ``durable``:
    with PostgreSQL's own durability (an fsync per commit), as the benchmarks need."""
    bindir = _bindir()
    if bindir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    server = PgServer(bindir, root, _free_port(), durable=durable)
    server.init()
    server.start()
    return server


def remove(server: PgServer) -> None:
    with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        server.stop("immediate")
    shutil.rmtree(server.root, ignore_errors=True)
