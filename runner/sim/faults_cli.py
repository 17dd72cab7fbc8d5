"""Fault options given on the command line, laid over the world's fault settings."""

from __future__ import annotations

from dataclasses import dataclass

from runner.sim.world import World

__all__ = ["FaultOptions", "apply_fault_options"]


@dataclass(frozen=True)
class FaultOptions:
    """Each field left ``None`` keeps the world's setting."""

    latency: tuple[float, float | None] | None = None  # (ms, max ms)
    latency_probability: float | None = None
    rate_limit: float | None = None
    retry_after: int | None = None
    server_errors: float | None = None
    drop_after_create: float | None = None


def apply_fault_options(world: World, options: FaultOptions) -> World:
    faults = world.faults
    latency = faults.latency
    if options.latency is not None:
        low, high = options.latency
        latency = latency.model_copy(
            update={"ms": low, "maxMs": high, "probability": options.latency_probability or 1.0}
        )
    elif options.latency_probability is not None:
        latency = latency.model_copy(update={"probability": options.latency_probability})
    rate_limit = faults.rateLimit
    if options.rate_limit is not None:
        rate_limit = rate_limit.model_copy(update={"probability": options.rate_limit})
    server_error = faults.serverError
    if options.server_errors is not None:
        server_error = server_error.model_copy(update={"probability": options.server_errors})
    if options.retry_after is not None:
        rate_limit = rate_limit.model_copy(update={"retryAfter": options.retry_after})
        server_error = server_error.model_copy(update={"retryAfter": options.retry_after})
    drop = faults.dropAfterCreate
    if options.drop_after_create is not None:
        drop = drop.model_copy(update={"probability": options.drop_after_create})
    new_faults = faults.model_copy(
        update={
            "latency": latency,
            "rateLimit": rate_limit,
            "serverError": server_error,
            "dropAfterCreate": drop,
        }
    )
    return world.model_copy(update={"faults": new_faults})
