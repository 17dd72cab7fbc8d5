"""``runner sim``: serve the local Coalesce simulator."""

from __future__ import annotations

import time
from pathlib import Path

import click

from runner.errors import RunnerError
from runner.output import echo

__all__ = ["command"]


def _latency_range(text: str | None) -> tuple[float, float | None] | None:
    if text is None:
        return None
    low, dash, high = text.partition("-")
    try:
        values = (float(low), float(high) if dash else None)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected MS or MIN-MAX, e.g. 50 or 20-300") from None
    if values[0] < 0 or (values[1] is not None and values[1] < values[0]):
        raise click.BadParameter(f"{text!r}: expected 0 <= MIN <= MAX")
    return values


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free port (the URL printed says which).",
)
@click.option(
    "--config",
    "world_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="World file (YAML, see docs/simulator.md); default: the built-in demo world.",
)
@click.option("--seed", type=int, help="Seed for node failures and faults (default: the world's).")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Simulated seconds per real second (10 runs everything ten times faster).",
)
@click.option(
    "--manual-clock",
    is_flag=True,
    help='Stop time: it moves only by POST /_sim/clock {"advance": SECONDS} (for tests).',
)
@click.option("--latency-ms", metavar="MS|MIN-MAX", help="Delay answers by this long.")
@click.option(
    "--latency-probability",
    type=click.FloatRange(0, 1),
    help="Share of requests delayed (default 1 when --latency-ms is given).",
)
@click.option("--rate-limit", type=click.FloatRange(0, 1), help="Share of requests answered 429.")
@click.option(
    "--retry-after", type=click.IntRange(min=0), help="Retry-After of 429 and 503, in seconds."
)
@click.option(
    "--server-errors", type=click.FloatRange(0, 1), help="Share of requests answered 500/502/503."
)
@click.option(
    "--drop-after-create",
    type=click.FloatRange(0, 1),
    help="Share of startRun/rerun calls that create the run but never answer.",
)
def command(
    host: str,
    port: int,
    world_file: Path | None,
    seed: int | None,
    speed: float,
    manual_clock: bool,
    latency_ms: str | None,
    latency_probability: float | None,
    rate_limit: float | None,
    retry_after: int | None,
    server_errors: float | None,
    drop_after_create: float | None,
) -> int:
    """Serve the local Coalesce simulator (the demo world unless --config is given)."""
    from runner.sim import ManualClock, SimClock, create_app, demo_world, load_world
    from runner.sim.faults_cli import FaultOptions, apply_fault_options
    from runner.sim.serve import bind, serve, url_of

    world = load_world(world_file) if world_file is not None else demo_world()
    world = apply_fault_options(
        world,
        FaultOptions(
            latency=_latency_range(latency_ms),
            latency_probability=latency_probability,
            rate_limit=rate_limit,
            retry_after=retry_after,
            server_errors=server_errors,
            drop_after_create=drop_after_create,
        ),
    )
    clock = ManualClock(time.time()) if manual_clock else SimClock(speed)
    app = create_app(world, clock=clock, seed=seed)
    try:
        sock = bind(host, port)
    except OSError as error:
        raise RunnerError(
            f"runner sim cannot listen on {host}:{port}: {error.strerror or error}",
            hint="Pick another port with --port (0 picks a free one).",
        ) from None
    url = url_of(sock)
    pace = "manual clock (POST /_sim/clock to advance)" if manual_clock else f"{speed:g}x"
    _print_banner(url, app.simulator.world, world_file, pace, app.simulator.seed)
    serve(app, sock)
    return 0


def _print_banner(url: str, world: object, world_file: Path | None, pace: str, seed: int) -> None:
    from runner.sim import World

    assert isinstance(world, World)
    echo(f"runner sim listening on {url}")
    environments = ", ".join(f"{e.id} {e.name} ({e.status})" for e in world.environments)
    echo(f"  world:  {world_file if world_file is not None else 'built-in demo'}: {environments}")
    echo(f"  token:  {world.tokens[0]}")
    echo(f"  speed:  {pace}, seed {seed}")
    echo("  Point a spec at it:")
    echo("    coalesce:")
    echo(f"      url: {url}")
    echo("      token: \"{{ secret('COALESCE_TOKEN') }}\"")
    echo(f"  and run with COALESCE_TOKEN={world.tokens[0]}")
    echo(
        f"  Controls: {url}/_sim/requests, /_sim/counters, /_sim/runs, /_sim/reset, "
        "/_sim/faults, /_sim/clock"
    )
    echo("Press Ctrl-C to stop.")
