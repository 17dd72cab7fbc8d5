"""The state store, whatever the database: the apply journal, the serial, and the way
every write is committed. The backends (:mod:`runner.state.sqlite`,
:mod:`runner.state.postgres`) only open a connection, speak their SQL dialect and keep
the environment locks; everything a journal write means is here, once.

The journal rule, on every backend:

- Every journal write (an apply begun, resumed or finished; a run's intent, its
  runCounter, its status) is committed before the method returns. Apply writes a run's
  intent before its startRun, and its runCounter as soon as it is known, so a run is
  never sent whose intent is not durable.
- :meth:`SqlState.batch` puts several writes in one transaction (apply's group commit,
  :mod:`runner.apply.group_commit`, uses it to share one commit among the runs fired
  at about the same time). A write made outside a batch, such as a status seen while
  polling, is its own transaction. Both are the same write path: the only difference
  is how many writes a commit carries, and a batch's writes are all committed, or
  (if one raises) none.
- Every write of a run moves its environment's serial (a counter in ``serials``) on
  by one, in the same transaction: a plan keeps the serial of each environment it
  read, and one that moved since means another apply ran there. A transaction moves
  the serials of the environments it wrote last, just before it commits, in one
  statement taking their rows in name order (so two transactions never wait for each
  other in a circle), and holds them only until the commit: the commits of one
  environment are serialized across every process sharing the state, and its serial
  only grows, while applies of different environments never wait for each other.
  Each run keeps the serial of its last write (``changed_serial``), unique within its
  environment: the write gives it its place among the transaction's writes there, as
  a negative number no committed row has, and the same statement turns it into the
  serial once that is known.

Within a process, one connection is shared by all threads behind a mutex.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from runner.errors import RunnerError
from runner.identity import RunKey
from runner.state.location import StateLocation
from runner.state.locks import LockAcquirer
from runner.state.records import (
    IN_FLIGHT_STATUSES,
    UNCERTAIN_STATUSES,
    UNFIRED_STATUSES,
    ApplyRecord,
    Fired,
    LockInfo,
    LockToken,
    NewRun,
    Outcome,
    Refusal,
    RunRecord,
    RunStatus,
    identity_of,
)
from runner.state.rows import APPLY_ROW_COLUMNS, Row, apply_record, aware, run_record
from runner.state.sanitize import scrubbed_text, to_json

# Every column of an apply but its plan document, which only apply_plan() needs: the
# journal reads the apply on every write, and the plan of a big apply is large.
_APPLY_FIELDS = tuple(column for column in APPLY_ROW_COLUMNS if column != "plan")
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


# Variables in one statement: 2 per environment and one per run, together well under
# the 999 of SQLite before 3.32.
_ENVIRONMENTS_PER_STATEMENT = 200
_IDS_PER_STATEMENT = 500


def bump_serials_sql(count: int) -> str:
    """Move ``count`` serials on, each by its own amount (``?`` pairs: environment,
    amount), taking their rows in the order given."""
    values = ", ".join("(?, ?)" for _ in range(count))
    return (
        f"INSERT INTO serials (environment, value) VALUES {values} ON CONFLICT (environment)"
        " DO UPDATE SET value = serials.value + excluded.value"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Database(Protocol):
    """One connection to a state database, in its SQL dialect.

    SQL is written once, with ``?`` placeholders; a backend translates what its driver
    needs. Nothing here holds the mutex: :class:`Session` does.
    """

    @property
    def location(self) -> StateLocation: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def execute_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None: ...

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT of one row into a table with an ``id`` key; the new id."""
        ...

    def insert_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """:meth:`insert` for each of ``rows``, their ids in order (on PostgreSQL all
        sent at once, with one wait for the answers)."""
        ...

    def update_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        """Run an UPDATE of at most one row for each of ``rows``; whether each changed
        one (on PostgreSQL all sent at once, with one wait for the answers)."""
        ...

    def bump_serials(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Add ``counts[environment]`` to each environment's serial (a new one starts at
        0), locking their rows in the order given, until the commit; the new values."""
        ...

    def insert_keeping_ids(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Insert rows with the ids they carry (a copy of another state), so that the
        ids given out afterwards come after them."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction: every read inside it sees the same committed state."""
        ...

    def transaction(self, *, alone: bool = False) -> AbstractContextManager[None]:
        """A write transaction, holding the write lock from its start where the
        database has one; committed at the end, rolled back on an exception. ``alone``:
        no other process may take a lock or write until it ends (a copy replacing the
        whole state)."""
        ...

    def errors(self, doing: str) -> AbstractContextManager[None]:
        """Database errors a person can act on become a RunnerError naming the state."""
        ...

    def moment(self, at: datetime) -> Any:
        """``at`` as the database stores a time."""
        ...

    def close(self) -> None: ...


class Session:
    """A :class:`Database` shared by the threads of a process: the mutex, the
    transactions and the batches. Journal and locks both write through it."""

    def __init__(self, database: Database, *, readonly: bool, clock: Clock) -> None:
        self.database = database
        self.readonly = readonly
        self._clock = clock
        self._mutex = threading.RLock()
        self._batching = 0  # > 0 while the mutex holder writes inside batch()
        # Of the transaction under way, by environment: how many places its writes were
        # given (how far the serial moves at the commit), and the runs they changed.
        self._places: dict[str, int] = {}
        self._written: dict[str, set[int]] = {}
        self._committed: list[Callable[[], None]] = []  # see once_committed()

    @property
    def location(self) -> StateLocation:
        return self.database.location

    def now(self, now: datetime | None = None) -> datetime:
        return aware(now if now is not None else self._clock())

    def moment(self, at: datetime) -> Any:
        return self.database.moment(aware(at))

    @contextmanager
    def transaction(self, doing: str, *, alone: bool = False) -> Iterator[Database]:
        """One committed write transaction (or a part of the batch() under way)."""
        if self.readonly:
            raise RuntimeError(f"cannot {doing}: the state at {self.location} is open read-only")
        with self._mutex, self.database.errors(doing):
            if self._batching:  # part of batch(): it commits once for all
                yield self.database
                return
            try:
                with self.database.transaction(alone=alone):
                    yield self.database
                    self._move_serials(self.database)
            finally:
                committed, self._committed = self._committed, []
                self._places.clear()
                self._written.clear()
            for remember in committed:
                remember()

    def once_committed(self, remember: Callable[[], None]) -> None:
        """Call ``remember`` when the transaction under way commits (never, if it is
        rolled back): what a process keeps in memory about rows must be about rows that
        exist (an id given out by a rolled-back insert may be given out again)."""
        self._committed.append(remember)

    @contextmanager
    def batch(self, doing: str) -> Iterator[None]:
        with self.transaction(doing):
            self._batching += 1
            try:
                yield
            finally:
                self._batching -= 1

    def serial_of_write(self, environment: str) -> int:
        """What a write of a run of ``environment`` in the transaction under way puts in
        its ``changed_serial`` until the commit: minus its place among the transaction's
        writes there (see :meth:`_move_serials`). A place given to a write that then
        changed nothing is a gap in the serials, never a serial given twice."""
        place = self._places[environment] = self._places.get(environment, 0) + 1
        return -place

    def wrote(self, environment: str, run_id: int) -> None:
        """Count a write that changed a run (after :meth:`serial_of_write`)."""
        self._written.setdefault(environment, set()).add(run_id)

    def _move_serials(self, db: Database) -> None:
        """Move the serial of each environment the transaction wrote on by its writes,
        and give each run written its serial for good."""
        if not self._written:
            return
        envs = sorted(self._written)
        for first in range(0, len(envs), _ENVIRONMENTS_PER_STATEMENT):
            group = envs[first : first + _ENVIRONMENTS_PER_STATEMENT]
            counts = {env: self._places[env] for env in group}
            moved = db.bump_serials(counts)
            # A write's place k (stored as -k) becomes the serial before the transaction
            # plus k: unique within the environment, in the order of the writes.
            bases = {env: moved[env] - count for env, count in counts.items()}
            cases = " ".join("WHEN ? THEN ?" for _ in group)
            values = [value for env in group for value in (env, bases[env])]
            runs = sorted({run for env in group for run in self._written[env]})
            for start in range(0, len(runs), _IDS_PER_STATEMENT):
                chunk = runs[start : start + _IDS_PER_STATEMENT]
                db.execute(
                    f"UPDATE runs SET changed_serial = (CASE environment {cases} END)"
                    f" - changed_serial WHERE id IN ({','.join('?' * len(chunk))})"
                    " AND changed_serial < 0",
                    [*values, *chunk],
                )

    @contextmanager
    def snapshot(self, doing: str) -> Iterator[Database]:
        """Reads that all see one committed state (or a part of the write under way)."""
        with self._mutex, self.database.errors(doing):
            if self._batching:
                yield self.database
                return
            with self.database.snapshot():
                yield self.database

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._mutex, self.database.errors("read"):
            return self.database.rows(sql, params)

    def close(self) -> None:
        with self._mutex:
            self.database.close()


class Locks(LockAcquirer, Protocol):
    """How a backend keeps the environment locks (taking one: :class:`LockAcquirer`)."""

    def heartbeat(self, token: LockToken) -> None: ...

    def release_lock(self, token: LockToken) -> bool: ...

    def force_unlock(self, environment: str) -> LockInfo | None: ...

    def list_locks(self) -> list[LockInfo]: ...

    @property
    def poll_seconds(self) -> float:
        """How often a waiter for a held lock tries again."""
        ...

    def close(self) -> None:
        """Let go of whatever the locks hold beside the session (their connections)."""
        ...


class SqlState:
    """The state store on one database session; ``open_state`` makes one."""

    def __init__(self, session: Session, locks: Locks) -> None:
        self._session = session
        self._locks = locks
        self._apply_environments: dict[int, tuple[str, ...]] = {}
        self._run_environments: dict[int, str] = {}  # a run's never changes

    # -- lifecycle --------------------------------------------------------------------

    @property
    def path(self) -> StateLocation:
        """Where the state is: a file, or a PostgreSQL URL shown without its password."""
        return self._session.location

    @property
    def readonly(self) -> bool:
        return self._session.readonly

    @property
    def database(self) -> Database:
        return self._session.database

    def close(self) -> None:
        self._locks.close()
        self._session.close()

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

    def batch(self, doing: str = "record several runs") -> AbstractContextManager[None]:
        """Several writes as one committed transaction: one commit instead of one each.
        All of them are committed, or (if one raises) none."""
        return self._session.batch(doing)

    def reading(self, doing: str = "read") -> AbstractContextManager[Database]:
        """The database, for reads that must all see one committed state (a copy of the
        whole state)."""
        return self._session.snapshot(doing)

    def replacing(self, doing: str) -> AbstractContextManager[Database]:
        """The database, in one write transaction that no other process may take a lock
        or write during: committed at the end, or (on an exception) rolled back with
        nothing changed. It moves no serial: the caller writes what it means to (a copy
        of a whole state writes the serials too)."""
        return self._session.transaction(doing, alone=True)

    def _environment_of_run(self, db: Database, run_id: int) -> str:
        environment = self._run_environments.get(run_id)
        if environment is None:
            environment = str(self._run_row(db, run_id, "environment")["environment"])
            self._remember_environment(run_id, environment)
        return environment

    def _remember_environment(self, run_id: int, environment: str) -> None:
        def remember() -> None:
            self._run_environments[run_id] = environment

        self._session.once_committed(remember)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._session.rows(sql, params)

    def _moment(self, at: datetime | None = None) -> Any:
        return self._session.moment(self._session.now(at))

    # -- serial -----------------------------------------------------------------------

    def serials(self, environments: Iterable[str]) -> dict[str, int]:
        """Each environment's serial: a number that grows with every write of one of its
        runs (0 before the first). A plan of ``prod`` keeps ``prod``'s, so it does not go
        stale because ``dev`` was applied meanwhile."""
        names = sorted(set(environments))
        if not names:
            return {}
        marks = ",".join("?" * len(names))
        rows = self._rows(
            f"SELECT environment, value FROM serials WHERE environment IN ({marks})", names
        )
        found = {str(row[0]): int(row[1]) for row in rows}
        return {name: found.get(name, 0) for name in names}

    def serial(self, environments: Iterable[str] | None = None) -> int:
        """The sum of the serials of ``environments`` (of every environment by default):
        it grows with every write of a run of one of them."""
        if environments is not None:
            return sum(self.serials(environments).values())
        return int(self._rows("SELECT coalesce(sum(value), 0) FROM serials")[0][0])

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
        with self._session.transaction("record an apply") as db:
            apply_id = db.insert(
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
                    self._moment(),
                ),
            )
            db.execute_many(
                "INSERT INTO apply_environments (apply_id, environment) VALUES (?, ?)",
                [(apply_id, env) for env in envs],
            )
        return apply_id

    def resume_apply(self, apply_id: int) -> ApplyRecord:
        """Reopen an interrupted (or never finished) apply, to continue it with
        ``apply --resume``: its journal keeps growing under the same id."""
        with self._session.transaction("resume an apply") as db:
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
        with self._session.transaction("record the end of an apply") as db:
            self._require_apply(db, apply_id)
            db.execute(
                "UPDATE applies SET outcome = ?, finished_at = ? WHERE id = ?",
                (ended.value, self._moment(), apply_id),
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

    def _environments_of(self, db: Database, apply_id: int) -> tuple[str, ...]:
        """The environments of an apply (fixed when it began: read once per apply)."""
        environments = self._apply_environments.get(apply_id)
        if environments is None:
            row = self._require_apply(db, apply_id)
            environments = self._apply_environments[apply_id] = tuple(
                json.loads(row["environments"])
            )
        return environments

    def _require_apply(self, db: Database, apply_id: int) -> Row:
        rows = db.rows("SELECT " + APPLY_COLUMNS + " FROM applies WHERE id = ?", (apply_id,))
        if not rows:
            raise LookupError(f"no apply {apply_id} in the state at {self.path}")
        return rows[0]

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
        return self.record_intents(
            [NewRun(apply_id, environment, batch, name, request, request_hash)]
        )[0]

    def record_intents(self, runs: Sequence[NewRun]) -> list[int]:
        """:meth:`record_intent` for several runs in one transaction; their ids."""
        return self._insert_runs(runs, RunStatus.INTENT, None)

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
        new = NewRun(apply_id, environment, batch, name, request, request_hash)
        return self._insert_runs([new], unfired, message)[0]

    def _insert_runs(
        self, runs: Sequence[NewRun], status: RunStatus, message: str | None
    ) -> list[int]:
        bodies = [to_json(run.request, f"request of {run.environment}/{run.name}") for run in runs]
        with self._session.transaction("record a run") as db:
            for run in runs:
                environments = self._environments_of(db, run.apply_id)
                if run.environment not in environments:
                    raise ValueError(
                        f"apply {run.apply_id} is over {', '.join(environments)}, "
                        f"not {run.environment!r}"
                    )
            at = self._moment()
            run_ids = db.insert_each(
                "INSERT INTO runs (apply_id, environment, batch, name, request, request_hash,"
                " status, intent_at, message, changed_serial)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.apply_id,
                        run.environment,
                        run.batch,
                        scrubbed_text(run.name, "name"),
                        body,
                        run.request_hash,
                        status.value,
                        at,
                        scrubbed_text(message, "message"),
                        self._session.serial_of_write(run.environment),
                    )
                    for run, body in zip(runs, bodies, strict=True)
                ],
            )
            for run, run_id in zip(runs, run_ids, strict=True):
                self._session.wrote(run.environment, run_id)
                self._remember_environment(run_id, run.environment)
            return run_ids

    def record_fired(self, run_id: int, run_counter: int, run_link: str | None = None) -> None:
        """Write the runCounter the server gave (status becomes ``waitingToRun``).

        Recording the same runCounter again is harmless; a different one raises, since
        it would mean the run was fired twice.
        """
        refused = self.record_fired_each([Fired(run_id, run_counter, run_link)])[0]
        if refused is not None:
            raise refused

    def record_fired_each(self, fired: Sequence[Fired]) -> list[Refusal | None]:
        """:meth:`record_fired` for several runs in one transaction: for each, ``None``
        once recorded, or why it was refused (the others are recorded all the same: a
        refused write changes nothing)."""
        # One statement per run when all is well (this runs once per fired run): the
        # checks are in its WHERE, and looked at one by one only when it changed nothing.
        uncertain = sorted(s.value for s in UNCERTAIN_STATUSES)
        unfired = sorted(s.value for s in UNFIRED_STATUSES)
        with self._session.transaction("record a fired run") as db:
            refusals: list[Refusal | None] = [None] * len(fired)
            known: list[tuple[int, Fired, str]] = []  # (place in fired, run, its environment)
            for index, one in enumerate(fired):
                try:
                    known.append((index, one, self._environment_of_run(db, one.run_id)))
                except LookupError as error:
                    refusals[index] = error
            at = self._moment()
            changed = db.update_each(
                "UPDATE runs SET run_counter = ?, run_link = coalesce(?, run_link),"
                " status = CASE WHEN status IN (?, ?) THEN ? ELSE status END,"
                " fired_at = coalesce(fired_at, ?), changed_serial = ?"
                " WHERE id = ? AND coalesce(run_counter, ?) = ? AND status NOT IN (?, ?)",
                [
                    (
                        one.run_counter,
                        scrubbed_text(one.run_link, "run_link"),
                        *uncertain,
                        RunStatus.WAITING_TO_RUN.value,
                        at,
                        self._session.serial_of_write(environment),
                        one.run_id,
                        one.run_counter,
                        one.run_counter,
                        *unfired,
                    )
                    for _, one, environment in known
                ],
            )
            for (index, one, environment), done in zip(known, changed, strict=True):
                if done:
                    self._session.wrote(environment, one.run_id)
                else:
                    refusals[index] = self._why_not_fired(db, one)
            return refusals

    def _why_not_fired(self, db: Database, fired: Fired) -> ValueError:
        row = self._run_row(db, fired.run_id, "environment, name, run_counter, status")
        identity = identity_of(row["environment"], row["name"])
        if row["run_counter"] is not None and row["run_counter"] != fired.run_counter:
            return ValueError(
                f"run {identity} (journal id {fired.run_id}) was already fired as "
                f"runCounter {row['run_counter']}; refusing to record runCounter "
                f"{fired.run_counter}"
            )
        return ValueError(f"run {identity} was recorded as {RunStatus(row['status'])}")

    def record_ambiguous(self, run_id: int, reason: str) -> None:
        """startRun was sent but its answer was lost: the run may exist on the server."""
        with self._session.transaction("record an ambiguous run") as db:
            run = self._require_run(db, run_id)
            if run.status not in UNCERTAIN_STATUSES:
                raise ValueError(f"run {run.identity} is {run.status}, not awaiting startRun")
            db.execute(
                "UPDATE runs SET status = ?, message = ?, changed_serial = ? WHERE id = ?",
                (
                    RunStatus.AMBIGUOUS.value,
                    scrubbed_text(reason, "reason"),
                    self._session.serial_of_write(run.environment),
                    run_id,
                ),
            )
            self._session.wrote(run.environment, run_id)

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
        with self._session.transaction("record a run status") as db:
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
                    self._session.moment(started_at) if started_at else None,
                    self._session.moment(ended_at) if ended_at else None,
                    to_json(list(failed_nodes), "failed_nodes")
                    if failed_nodes is not None
                    else None,
                    scrubbed_text(message, "message"),
                    self._session.serial_of_write(run.environment),
                    run_id,
                ),
            )
            self._session.wrote(run.environment, run_id)

    def _require_run(self, db: Database, run_id: int) -> RunRecord:
        return run_record(self._run_row(db, run_id))

    def _run_row(self, db: Database, run_id: int, columns: str = "*") -> Row:
        rows = db.rows(f"SELECT {columns} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise LookupError(f"no run {run_id} in the state at {self.path}")
        return rows[0]

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
            if not names:
                return {}
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

    # -- locks (kept by the backend) ----------------------------------------------------

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
        """Take ``environment``'s lock, or raise
        :class:`~runner.state.locks.EnvironmentLocked` naming its holder. A lock its
        holder left behind is taken over; the token's ``took_over`` then describes it."""
        if ttl_seconds <= 0:
            raise ValueError("a lock's ttl must be positive")
        return self._locks.acquire_lock(
            environment, holder=holder, host=host, pid=pid, ttl_seconds=ttl_seconds, now=now
        )

    def heartbeat(self, token: LockToken) -> None:
        """Say the holder is alive; raises :class:`~runner.state.locks.LockLostError`
        if the lock is no longer ours."""
        self._locks.heartbeat(token)

    def release_lock(self, token: LockToken) -> bool:
        """Release our lock; ``False`` if it was no longer ours (nothing is changed)."""
        return self._locks.release_lock(token)

    def force_unlock(self, environment: str) -> LockInfo | None:
        """Remove ``environment``'s lock whoever holds it (``runner unlock``); returns
        the lock removed, if there was one."""
        return self._locks.force_unlock(environment)

    def list_locks(self) -> list[LockInfo]:
        """Every lock held, by environment, each saying whether it looks stale."""
        return self._locks.list_locks()

    @property
    def lock_poll_seconds(self) -> float:
        """How often a waiter for a held lock tries again (``wait_for_lock_async``)."""
        return self._locks.poll_seconds
