"""The state in an embedded SQLite database (the default, ``.runner/state.db``).

Every journal write is its own committed transaction (see :mod:`runner.state.connect`
for why a commit survives kill -9 and a power cut). Within a process, one connection is
shared by all threads behind a mutex.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from runner.errors import RunnerError
from runner.identity import RunKey
from runner.state.connect import connect_readonly, connect_readwrite, sqlite_errors
from runner.state.locks import EnvironmentLocked, LockLostError, pid_alive, stale_reason
from runner.state.records import (
    IN_FLIGHT_STATUSES,
    UNCERTAIN_STATUSES,
    UNFIRED_STATUSES,
    ApplyRecord,
    LockInfo,
    LockToken,
    Outcome,
    RunRecord,
    RunStatus,
    identity_of,
)
from runner.state.rows import apply_record, aware, from_text, last_id, run_record, to_text
from runner.state.sanitize import scrubbed_text, to_json

# Every column of an apply but its plan document, which only apply_plan() needs: the
# journal reads the apply on every write, and the plan of a big apply is large.
_APPLY_FIELDS = (
    "id",
    "who",
    "host",
    "git_commit",
    "environments",
    "argv",
    "plan_hash",
    "started_at",
    "finished_at",
    "outcome",
    "resumed",
)
APPLY_COLUMNS = ", ".join(_APPLY_FIELDS)
APPLY_COLUMNS_QUALIFIED = ", ".join(f"applies.{name}" for name in _APPLY_FIELDS)

Clock = Callable[[], datetime]

# Statuses that say the server knows the run, so it must have a runCounter.
_FIRED_STATUSES = frozenset(
    {
        RunStatus.WAITING_TO_RUN,
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELED,
        RunStatus.TIMEOUT,
    }
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_state(
    path: Path | str,
    *,
    readonly: bool = False,
    clock: Clock = utc_now,
    hostname: str | None = None,
    is_alive: Callable[[int], bool] = pid_alive,
) -> SqliteState:
    """Open (creating, migrating) the state at ``path``.

    Read-only, a missing file is not created: the state is empty (plan on a fresh
    checkout). Read-only, a file with an older schema is migrated in a private
    in-memory copy, so the file itself is never written.

    ``hostname`` is this machine's name, to tell whether a lock's holder runs here (its
    pid can then be checked); ``is_alive`` checks a pid. Both are injectable for tests.
    """
    path = Path(path)
    with sqlite_errors(path, "open"):
        connection = connect_readonly(path) if readonly else connect_readwrite(path)
    return SqliteState(
        connection,
        path,
        readonly=readonly,
        clock=clock,
        hostname=hostname if hostname is not None else socket.gethostname(),
        is_alive=is_alive,
    )


class SqliteState:
    """The state store on one SQLite connection. Use :func:`open_state` to make one."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        *,
        readonly: bool,
        clock: Clock,
        hostname: str,
        is_alive: Callable[[int], bool],
    ) -> None:
        self._db = connection
        self._path = path
        self._readonly = readonly
        self._clock = clock
        self._hostname = hostname
        self._is_alive = is_alive
        self._mutex = threading.RLock()
        self._batching = 0  # > 0 while the mutex holder writes inside batch()
        self._apply_environments: dict[int, tuple[str, ...]] = {}

    # -- lifecycle --------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions -----------------------------------------------------------------

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One committed write transaction, holding the write lock from the start."""
        if self._readonly:
            raise RuntimeError(f"cannot {doing}: the state at {self._path} is open read-only")
        with self._mutex, sqlite_errors(self._path, doing):
            if self._batching:  # part of batch(): it commits once for all
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def batch(self, doing: str = "record several runs") -> Iterator[None]:
        """Several writes as one committed transaction: one fsync instead of one each.
        All of them are committed, or (if one raises) none."""
        with self._transaction(doing):
            self._batching += 1
            try:
                yield
            finally:
                self._batching -= 1

    @contextmanager
    def _journal_write(self, doing: str) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction that changes applied state, with the serial it bumped to."""
        with self._transaction(doing) as db:
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'serial'")
            serial: int = db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()[0]
            yield db, serial

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex, sqlite_errors(self._path, "read"):
            return self._db.execute(sql, params).fetchall()

    def _now(self, now: datetime | None = None) -> datetime:
        return aware(now if now is not None else self._clock())

    # -- serial -----------------------------------------------------------------------

    def serial(self, environments: Iterable[str] | None = None) -> int:
        """A number that grows with every journal write.

        With ``environments``, it grows only when a run of one of them is written: a
        plan of ``prod`` does not go stale because ``dev`` was applied meanwhile.
        """
        if environments is None:
            return int(self._rows("SELECT value FROM meta WHERE key = 'serial'")[0][0])
        names = sorted(set(environments))
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        rows = self._rows(
            f"SELECT coalesce(max(changed_serial), 0) FROM runs WHERE environment IN ({marks})",
            names,
        )
        return int(rows[0][0])

    # -- applies ----------------------------------------------------------------------

    def begin_apply(
        self,
        *,
        who: str,
        host: str,
        git_commit: str | None,
        environments: Sequence[str],
        argv: Sequence[str],
        plan_hash: str | None = None,
        plan: Mapping[str, Any] | None = None,
    ) -> int:
        """Record the start of an apply over ``environments``; returns its id.

        ``plan`` is the secret-free plan document the apply executes: ``apply --resume``
        continues exactly that plan.
        """
        envs = list(dict.fromkeys(environments))
        if not envs:
            raise ValueError("an apply needs at least one environment")
        with self._journal_write("record an apply") as (db, _):
            cursor = db.execute(
                "INSERT INTO applies (who, host, git_commit, environments, argv, plan_hash,"
                " plan, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scrubbed_text(who, "who"),
                    scrubbed_text(host, "host"),
                    scrubbed_text(git_commit, "git_commit"),
                    to_json(envs, "environments"),
                    to_json(list(argv), "argv"),
                    plan_hash,
                    to_json(plan, "plan") if plan is not None else None,
                    to_text(self._now()),
                ),
            )
            apply_id = last_id(cursor)
            db.executemany(
                "INSERT INTO apply_environments (apply_id, environment) VALUES (?, ?)",
                [(apply_id, env) for env in envs],
            )
        return apply_id

    def resume_apply(self, apply_id: int) -> ApplyRecord:
        """Reopen an interrupted (or never finished) apply, to continue it with
        ``apply --resume``: its journal keeps growing under the same id."""
        with self._journal_write("resume an apply") as (db, _):
            record = apply_record(self._require_apply(db, apply_id))
            if record.outcome not in (None, Outcome.INTERRUPTED, Outcome.ERRORED):
                raise RunnerError(
                    f"apply {apply_id} ended ({record.outcome}); there is nothing to resume",
                    hint="run `runner apply` for a new apply",
                )
            db.execute(
                "UPDATE applies SET outcome = NULL, finished_at = NULL, resumed = resumed + 1"
                " WHERE id = ?",
                (apply_id,),
            )
            return apply_record(self._require_apply(db, apply_id))

    def finish_apply(self, apply_id: int, outcome: Outcome | str) -> None:
        """Record how an apply ended."""
        ended = Outcome(outcome)
        with self._journal_write("record the end of an apply") as (db, _):
            self._require_apply(db, apply_id)
            db.execute(
                "UPDATE applies SET outcome = ?, finished_at = ? WHERE id = ?",
                (ended.value, to_text(self._now()), apply_id),
            )

    def apply_plan(self, apply_id: int) -> dict[str, Any] | None:
        """The plan document an apply was started with (``None`` if it kept none)."""
        rows = self._rows("SELECT plan FROM applies WHERE id = ?", (apply_id,))
        if not rows or rows[0][0] is None:
            return None
        plan: dict[str, Any] = json.loads(rows[0][0])
        return plan

    def run_counters(self, environment: str) -> set[int]:
        """Every runCounter the journal knows in ``environment``: runs apply fired."""
        rows = self._rows(
            "SELECT run_counter FROM runs WHERE environment = ? AND run_counter IS NOT NULL",
            (environment,),
        )
        return {int(row[0]) for row in rows}

    def get_apply(self, apply_id: int) -> ApplyRecord | None:
        rows = self._rows("SELECT " + APPLY_COLUMNS + " FROM applies WHERE id = ?", (apply_id,))
        return apply_record(rows[0]) if rows else None

    def last_apply(self, environment: str | None = None) -> ApplyRecord | None:
        """The latest apply (of ``environment``, if given), finished or not."""
        for record in self._applies_newest_first(environment):
            return record
        return None

    def interrupted_apply(self, environment: str | None = None) -> ApplyRecord | None:
        """The apply ``--resume`` should continue: the latest one that was interrupted
        or never finished, unless a later apply has touched one of its environments
        since (resuming it would then fire on top of newer work)."""
        touched_later: set[str] = set()
        for record in self._applies_newest_first(environment):
            # An apply that ended in an error is continued like an interrupted one.
            resumable = record.outcome in (None, Outcome.INTERRUPTED, Outcome.ERRORED)
            if resumable and touched_later.isdisjoint(record.environments):
                return record
            touched_later.update(record.environments)
        return None

    def _applies_newest_first(self, environment: str | None) -> Iterator[ApplyRecord]:
        params: tuple[str, ...] = ()
        if environment is None:
            sql = "SELECT " + APPLY_COLUMNS + " FROM applies ORDER BY id DESC"
        else:
            sql = (
                "SELECT " + APPLY_COLUMNS_QUALIFIED + " FROM applies JOIN apply_environments"
                " ON apply_environments.apply_id = applies.id"
                " WHERE apply_environments.environment = ? ORDER BY applies.id DESC"
            )
            params = (environment,)
        for row in self._rows(sql, params):
            yield apply_record(row)

    def _environments_of(self, db: sqlite3.Connection, apply_id: int) -> tuple[str, ...]:
        """The environments of an apply (fixed when it began: read once per apply)."""
        environments = self._apply_environments.get(apply_id)
        if environments is None:
            row = self._require_apply(db, apply_id)
            environments = self._apply_environments[apply_id] = tuple(
                json.loads(row["environments"])
            )
        return environments

    def _require_apply(self, db: sqlite3.Connection, apply_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            "SELECT " + APPLY_COLUMNS + " FROM applies WHERE id = ?", (apply_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no apply {apply_id} in the state at {self._path}")
        return row

    # -- the run journal --------------------------------------------------------------

    def record_intent(
        self,
        apply_id: int,
        environment: str,
        batch: str,
        name: str,
        request: Mapping[str, Any],
        request_hash: str,
    ) -> int:
        """Write, and commit, that a run is about to be fired: call it BEFORE startRun.

        ``request`` is the secret-free startRun body (``redact_all``); a
        :class:`~runner.secrets.Secret` inside raises ``SecretInStateError``.
        """
        return self._insert_run(
            apply_id, environment, batch, name, request, request_hash, RunStatus.INTENT, None
        )

    def record_unfired(
        self,
        apply_id: int,
        environment: str,
        batch: str,
        name: str,
        request: Mapping[str, Any],
        request_hash: str,
        status: RunStatus | str = RunStatus.SKIPPED,
        *,
        message: str | None = None,
    ) -> int:
        """Record a run that apply decided not to fire (``skipped``, ``not-started``)."""
        unfired = RunStatus(status)
        if unfired not in UNFIRED_STATUSES:
            raise ValueError(f"{unfired} is not a status of a run that was not fired")
        return self._insert_run(
            apply_id, environment, batch, name, request, request_hash, unfired, message
        )

    def _insert_run(
        self,
        apply_id: int,
        environment: str,
        batch: str,
        name: str,
        request: Mapping[str, Any],
        request_hash: str,
        status: RunStatus,
        message: str | None,
    ) -> int:
        body = to_json(request, f"request of {environment}/{name}")
        with self._journal_write("record a run") as (db, serial):
            environments = self._environments_of(db, apply_id)
            if environment not in environments:
                raise ValueError(
                    f"apply {apply_id} is over {', '.join(environments)}, not {environment!r}"
                )
            cursor = db.execute(
                "INSERT INTO runs (apply_id, environment, batch, name, request, request_hash,"
                " status, intent_at, message, changed_serial)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    apply_id,
                    environment,
                    batch,
                    scrubbed_text(name, "name"),
                    body,
                    request_hash,
                    status.value,
                    to_text(self._now()),
                    scrubbed_text(message, "message"),
                    serial,
                ),
            )
            return last_id(cursor)

    def record_fired(self, run_id: int, run_counter: int, run_link: str | None = None) -> None:
        """Write the runCounter the server gave (status becomes ``waitingToRun``).

        Recording the same runCounter again is harmless; a different one raises, since
        it would mean the run was fired twice.
        """
        with self._journal_write("record a fired run") as (db, serial):
            # Only what the checks need: this runs once per fired run.
            row = self._run_row(db, run_id, "environment, name, run_counter, status")
            identity = identity_of(row["environment"], row["name"])
            recorded = RunStatus(row["status"])
            if row["run_counter"] is not None and row["run_counter"] != run_counter:
                raise ValueError(
                    f"run {identity} (journal id {run_id}) was already fired as "
                    f"runCounter {row['run_counter']}; refusing to record runCounter {run_counter}"
                )
            if recorded in UNFIRED_STATUSES:
                raise ValueError(f"run {identity} was recorded as {recorded}")
            status = RunStatus.WAITING_TO_RUN if recorded in UNCERTAIN_STATUSES else recorded
            db.execute(
                "UPDATE runs SET run_counter = ?, run_link = coalesce(?, run_link),"
                " status = ?, fired_at = coalesce(fired_at, ?), changed_serial = ? WHERE id = ?",
                (
                    run_counter,
                    scrubbed_text(run_link, "run_link"),
                    status.value,
                    to_text(self._now()),
                    serial,
                    run_id,
                ),
            )

    def record_ambiguous(self, run_id: int, reason: str) -> None:
        """startRun was sent but its answer was lost: the run may exist on the server."""
        with self._journal_write("record an ambiguous run") as (db, serial):
            run = self._require_run(db, run_id)
            if run.status not in UNCERTAIN_STATUSES:
                raise ValueError(f"run {run.identity} is {run.status}, not awaiting startRun")
            db.execute(
                "UPDATE runs SET status = ?, message = ?, changed_serial = ? WHERE id = ?",
                (RunStatus.AMBIGUOUS.value, scrubbed_text(reason, "reason"), serial, run_id),
            )

    def record_status(
        self,
        run_id: int,
        status: RunStatus | str,
        *,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        failed_nodes: Sequence[Mapping[str, Any]] | None = None,
        message: str | None = None,
    ) -> None:
        """Write what became of a run. ``None`` keeps what was recorded before.

        A status the server reports (``waitingToRun``, ``running``, ``completed``,
        ``failed``, ``canceled``) or ``timeout`` needs a runCounter recorded first;
        ``skipped`` / ``not-started`` are refused for a run that was fired. Use
        :meth:`record_fired` and :meth:`record_ambiguous` for those steps.
        """
        new = RunStatus(status)
        if new in UNCERTAIN_STATUSES:
            raise ValueError(f"use record_intent / record_ambiguous for {new}")
        with self._journal_write("record a run status") as (db, serial):
            run = self._require_run(db, run_id)
            if new in _FIRED_STATUSES and run.run_counter is None:
                raise ValueError(f"run {run.identity} has no runCounter; cannot be {new}")
            if new in UNFIRED_STATUSES and run.run_counter is not None:
                raise ValueError(
                    f"run {run.identity} was fired (runCounter {run.run_counter}); "
                    f"it cannot be {new}"
                )
            db.execute(
                "UPDATE runs SET status = ?, started_at = coalesce(?, started_at),"
                " ended_at = coalesce(?, ended_at), failed_nodes = coalesce(?, failed_nodes),"
                " message = coalesce(?, message), changed_serial = ? WHERE id = ?",
                (
                    new.value,
                    to_text(started_at) if started_at else None,
                    to_text(ended_at) if ended_at else None,
                    to_json(list(failed_nodes), "failed_nodes")
                    if failed_nodes is not None
                    else None,
                    scrubbed_text(message, "message"),
                    serial,
                    run_id,
                ),
            )

    def _require_run(self, db: sqlite3.Connection, run_id: int) -> RunRecord:
        return run_record(self._run_row(db, run_id))

    def _run_row(self, db: sqlite3.Connection, run_id: int, columns: str = "*") -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            f"SELECT {columns} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no run {run_id} in the state at {self._path}")
        return row

    def get_run(self, run_id: int) -> RunRecord | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        return run_record(rows[0]) if rows else None

    def runs_of_apply(self, apply_id: int) -> list[RunRecord]:
        """Every run of an apply's journal, in the order they were recorded."""
        rows = self._rows("SELECT * FROM runs WHERE apply_id = ? ORDER BY id", (apply_id,))
        return [run_record(row) for row in rows]

    def runs_in_flight(self, environment: str | None = None) -> list[RunRecord]:
        """Fired runs not known to have ended (``waitingToRun``, ``running``, and
        ``timeout``: apply stopped waiting, the run may still be going), oldest first."""
        statuses = sorted(s.value for s in IN_FLIGHT_STATUSES)
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT * FROM runs WHERE status IN ({marks})"
        params: list[Any] = list(statuses)
        if environment is not None:
            sql += " AND environment = ?"
            params.append(environment)
        return [run_record(row) for row in self._rows(sql + " ORDER BY id", params)]

    def last_applied_runs(self, environments: Iterable[str] | None = None) -> dict[str, RunRecord]:
        """The plan baseline: for each identity ``env/name``, its latest run that may
        have reached the server (any status but ``skipped`` / ``not-started``; an
        ``intent`` or ``ambiguous`` one counts, as it may have been fired)."""
        unfired = sorted(s.value for s in UNFIRED_STATUSES)
        sql = (
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs"
            f" WHERE status NOT IN ({','.join('?' * len(unfired))})"
        )
        params: list[Any] = list(unfired)
        if environments is not None:
            names = sorted(set(environments))
            sql += f" AND environment IN ({','.join('?' * len(names))})"
            params.extend(names)
        sql += " GROUP BY environment, name) ORDER BY environment, name"
        return {record.identity: record for record in map(run_record, self._rows(sql, params))}

    def find_run(self, identity: str) -> RunRecord | None:
        """The latest run recorded for ``env/name``, whatever its status."""
        key = RunKey.parse(identity)
        if key is None:
            raise ValueError(f"a run identity is ENVIRONMENT/RUN, not {identity!r}")
        rows = self._rows(
            "SELECT * FROM runs WHERE environment = ? AND name = ? ORDER BY id DESC LIMIT 1",
            (key.environment, key.name),
        )
        return run_record(rows[0]) if rows else None

    # -- locks ------------------------------------------------------------------------

    def acquire_lock(
        self,
        environment: str,
        *,
        holder: str,
        host: str,
        pid: int,
        ttl_seconds: float,
        now: datetime | None = None,
    ) -> LockToken:
        """Take ``environment``'s lock, or raise :class:`EnvironmentLocked` naming its
        holder. A stale lock is taken over in the same transaction; the returned
        token's ``took_over`` then describes it, for the caller to report."""
        if ttl_seconds <= 0:
            raise ValueError("a lock's ttl must be positive")
        at = self._now(now)
        with self._transaction("take a lock") as db:
            row = db.execute("SELECT * FROM locks WHERE environment = ?", (environment,)).fetchone()
            previous = self._lock_info(row, at) if row is not None else None
            if previous is not None:
                if not previous.stale:
                    raise EnvironmentLocked(previous)
                db.execute(
                    "DELETE FROM locks WHERE environment = ? AND token = ?",
                    (environment, row["token"]),
                )
            token = LockToken(
                environment=environment,
                token=uuid.uuid4().hex,
                holder=holder,
                host=host,
                pid=pid,
                acquired_at=at,
                ttl_seconds=ttl_seconds,
                took_over=previous,
            )
            db.execute(
                "INSERT INTO locks (environment, token, holder, host, pid, acquired_at,"
                " heartbeat_at, ttl_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    environment,
                    token.token,
                    scrubbed_text(holder, "holder"),
                    scrubbed_text(host, "host"),
                    pid,
                    to_text(at),
                    to_text(at),
                    float(ttl_seconds),
                ),
            )
        return token

    def heartbeat(self, token: LockToken) -> None:
        """Say the holder is alive; raises :class:`LockLostError` if the lock is no
        longer ours (taken over as stale, or forced open)."""
        at = self._now()
        with self._transaction("renew a lock") as db:
            cursor = db.execute(
                "UPDATE locks SET heartbeat_at = ? WHERE environment = ? AND token = ?",
                (to_text(at), token.environment, token.token),
            )
            if cursor.rowcount == 1:
                return
            row = db.execute(
                "SELECT * FROM locks WHERE environment = ?", (token.environment,)
            ).fetchone()
        raise LockLostError(token, self._lock_info(row, at) if row is not None else None)

    def release_lock(self, token: LockToken) -> bool:
        """Release our lock; ``False`` if it was no longer ours (nothing is changed)."""
        with self._transaction("release a lock") as db:
            cursor = db.execute(
                "DELETE FROM locks WHERE environment = ? AND token = ?",
                (token.environment, token.token),
            )
            return cursor.rowcount == 1

    def force_unlock(self, environment: str) -> LockInfo | None:
        """Remove ``environment``'s lock whoever holds it (``runner unlock``); returns
        the lock removed, if there was one."""
        at = self._now()
        with self._transaction("remove a lock") as db:
            row = db.execute("SELECT * FROM locks WHERE environment = ?", (environment,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM locks WHERE environment = ?", (environment,))
            return self._lock_info(row, at)

    def list_locks(self) -> list[LockInfo]:
        """Every lock held, by environment, each saying whether it looks stale."""
        at = self._now()
        rows = self._rows("SELECT * FROM locks ORDER BY environment")
        return [self._lock_info(row, at) for row in rows]

    def _lock_info(self, row: sqlite3.Row, now: datetime) -> LockInfo:
        heartbeat_at = from_text(row["heartbeat_at"])
        return LockInfo(
            environment=row["environment"],
            holder=row["holder"],
            host=row["host"],
            pid=row["pid"],
            acquired_at=from_text(row["acquired_at"]),
            heartbeat_at=heartbeat_at,
            ttl_seconds=row["ttl_seconds"],
            stale_reason=stale_reason(
                host=row["host"],
                pid=row["pid"],
                heartbeat_at=heartbeat_at,
                ttl_seconds=row["ttl_seconds"],
                now=now,
                this_host=self._hostname,
                is_alive=self._is_alive,
            ),
        )
