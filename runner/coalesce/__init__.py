"""The Coalesce API: wire models, and the async client that talks to it."""

from __future__ import annotations

from runner.coalesce.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    EnvironmentNode,
    is_terminal,
)

__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "EnvironmentNode", "is_terminal"]
