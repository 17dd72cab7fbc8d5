"""The state: the record of applies and fired runs, and the environment locks.

``open_state(state_path(cli_value))`` gives a :class:`SqlState` on a SQLite file or on
PostgreSQL (a ``postgresql://`` URL); plan code should depend on :class:`StateReader`,
apply code on :class:`StateStore`. The state never holds
a secret: requests are stored redacted, foreign text arrives through
``runner.secrets.foreign_text``, and a Secret object handed over is refused.
"""

from __future__ import annotations

from runner.state.backends import open_state
from runner.state.interface import StateReader, StateStore
from runner.state.location import (
    DEFAULT_STATE_PATH,
    STATE_ENV_VAR,
    PostgresLocation,
    StateLocation,
    state_path,
)
from runner.state.locks import (
    EnvironmentLocked,
    LockLostError,
    holder_with_ci_run,
    pid_alive,
    wait_for_lock_async,
)
from runner.state.records import (
    IN_FLIGHT_STATUSES,
    UNCERTAIN_STATUSES,
    UNFIRED_STATUSES,
    AppliedRun,
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
from runner.state.sanitize import SecretInStateError
from runner.state.store import SqlState, utc_now

__all__ = [
    "DEFAULT_STATE_PATH",
    "IN_FLIGHT_STATUSES",
    "STATE_ENV_VAR",
    "UNCERTAIN_STATUSES",
    "UNFIRED_STATUSES",
    "AppliedRun",
    "ApplyRecord",
    "EnvironmentLocked",
    "Fired",
    "LockInfo",
    "LockLostError",
    "LockToken",
    "NewRun",
    "Outcome",
    "PostgresLocation",
    "Refusal",
    "RunRecord",
    "RunStatus",
    "SecretInStateError",
    "SqlState",
    "StateLocation",
    "StateReader",
    "StateStore",
    "holder_with_ci_run",
    "identity_of",
    "open_state",
    "pid_alive",
    "state_path",
    "utc_now",
    "wait_for_lock_async",
]
