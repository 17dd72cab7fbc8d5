"""Run the benchmarks: ``python -m tests.bench [NAME...] [--keep] [--check]``.

Prints one JSON object per benchmark per line on stdout (see ``_common.result``), and on
stderr the machine it ran on and a summary. NAME picks benchmarks (default: all):
fire (fire throughput and memory, on SQLite and on PostgreSQL), shared (10 applies at
once on one PostgreSQL state), wait, plan, startup, selectors.

``--keep`` keeps each benchmark's folder (specs, world, state, outputs) for a closer
look, ``--check`` exits 1 when a target was missed. A benchmark that breaks prints a
line with its error and ``"met": false``; the others still run.

These are not tests: pytest does not collect them (``bench_*.py``; see conftest.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from tests.bench import (
    bench_fire,
    bench_plan,
    bench_selectors,
    bench_shared,
    bench_startup,
    bench_wait,
)
from tests.bench._common import Figures, byte_compile_package, emit, machine

BENCHMARKS: dict[str, ModuleType] = {
    "fire": bench_fire,
    "shared": bench_shared,
    "wait": bench_wait,
    "plan": bench_plan,
    "startup": bench_startup,
    "selectors": bench_selectors,
}
TIME_LIMIT_SECONDS = 300.0


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def _run_one(name: str, module: ModuleType, keep: bool) -> list[Figures]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    runner: Callable[[Path], list[Figures]] = module.run
    try:
        return runner(folder)
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        return [{"benchmark": name, "error": f"{type(error).__name__}: {error}", "met": False}]
    finally:
        if keep:
            print(f"bench: {name} kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    names = args.names or list(BENCHMARKS)
    byte_compile_package()
    print(f"bench: machine {json.dumps(machine())}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    lines: list[Figures] = []
    for name in names:
        began = time.perf_counter()
        for line in _run_one(name, BENCHMARKS[name], args.keep):
            emit(line)
            lines.append(line)
        print(f"bench: {name} took {time.perf_counter() - began:.1f}s", file=sys.stderr)
    total = time.perf_counter() - start
    missed = [str(line["benchmark"]) for line in lines if not line.get("met")]
    print(
        f"bench: {len(lines) - len(missed)} of {len(lines)} met their targets"
        + (f" (missed: {', '.join(missed)})" if missed else "")
        + f"; {total:.1f}s in all (limit {TIME_LIMIT_SECONDS:.0f}s)",
        file=sys.stderr,
    )
    if total > TIME_LIMIT_SECONDS:
        print("bench: the suite ran over its time limit", file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
