"""What a person does with the runs apply fired: look at them (``status``), stop them
(``cancel``), fire the failed ones again (``rerun``), continue an interrupted apply
(``resume``), and open a lock a dead apply left behind (``unlock``). This package sits
above :mod:`runner.apply` and builds on its executor; apply never imports it.

The command line calls these functions and renders what they return; nothing here
prints. Every call that changes Coalesce is framed by journal writes, as in apply: a
rerun's intent is committed before ``POST /scheduler/rerun`` and its runCounter as soon
as it is known, so a rerun is never fired twice; a cancel is recorded once Coalesce has
accepted it.

Specs are read for three things only: the URL and token of each environment, and, for
a rerun, the run's parameters, credentials and force flag (Coalesce does not carry
parameters over to a rerun). A secret an operation does not need may be missing:
cancelling a runaway run must not wait for a Snowflake password to be exported.
"""

from __future__ import annotations

from runner.operations._shared import load_specs_for_operations
from runner.operations.cancel import (
    CancelReport,
    CancelResult,
    CancelSelection,
    CancelVerdict,
    cancel_runs,
    select_for_cancel,
)
from runner.operations.locks import UnlockResult, unlock
from runner.operations.rerun_exec import RerunResult, rerun
from runner.operations.rerun_plan import (
    RerunJob,
    RerunPlan,
    RerunSelection,
    journal_request,
    plan_reruns,
    select_for_rerun,
)
from runner.operations.resume import resume
from runner.operations.status import (
    Refreshed,
    RefreshResult,
    StatusReport,
    read_status,
    refresh_in_flight,
)

__all__ = [
    "CancelReport",
    "CancelResult",
    "CancelSelection",
    "CancelVerdict",
    "RefreshResult",
    "Refreshed",
    "RerunJob",
    "RerunPlan",
    "RerunResult",
    "RerunSelection",
    "StatusReport",
    "UnlockResult",
    "cancel_runs",
    "journal_request",
    "load_specs_for_operations",
    "plan_reruns",
    "read_status",
    "refresh_in_flight",
    "rerun",
    "resume",
    "select_for_cancel",
    "select_for_rerun",
    "unlock",
]
