"""A run's identity, ``<environment>/<run name>``: how a run is named everywhere (plans,
the journal, ``--run`` globs, messages), defined once."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RunKey"]


class RunKey(NamedTuple):
    """An environment's name and a run's name within it."""

    environment: str
    name: str

    def __str__(self) -> str:
        return f"{self.environment}/{self.name}"

    @classmethod
    def parse(cls, identity: str) -> RunKey | None:
        """The key written as ``identity``, or None when it has no ``/`` (an
        environment's name holds none; a run's name may)."""
        environment, slash, name = identity.partition("/")
        return cls(environment, name) if slash else None
