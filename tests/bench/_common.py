"""What the benchmarks share: result lines with targets, the served simulator, timed
subprocesses with their peak memory, and the machine they ran on.

Every benchmark prints one JSON object per line::

    {"benchmark": NAME, ...figures..., "target": {FIGURE: "<= 1.5", ...}, "met": true}

Figures are ratios against a bound measured in the same run wherever one exists, so
that a slow or busy machine moves the bound and the figure together.
"""

from __future__ import annotations

import compileall
import datetime as dt
import json
import math
import operator
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# The console script users run; `python -m runner` when the package is not installed.
_SCRIPT = Path(PYTHON).parent / "runner"
RUNNER: tuple[str, ...] = (str(_SCRIPT),) if _SCRIPT.exists() else (PYTHON, "-m", "runner")

Figures = dict[str, Any]


def byte_compile_package() -> None:
    """Byte-compile the runner package, as installing it does (pip compiles what it
    installs). An editable install run with PYTHONDONTWRITEBYTECODE set (as on some CI
    machines) would otherwise compile every module of runner at every start, which is
    not the start-up a user of an installed runner sees (about 60 ms for apply)."""
    compileall.compile_dir(REPO / "runner", quiet=1)


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """A figure's target: ``figure op limit``, e.g. ``wall_ratio <= 1.5``."""

    figure: str
    op: str
    limit: float

    def met(self, figures: Mapping[str, Any]) -> bool:
        value = figures.get(self.figure)
        if not isinstance(value, int | float) or math.isnan(value):
            return False
        return _OPERATORS[self.op](float(value), self.limit)

    def describe(self) -> str:
        return f"{self.op} {self.limit:g}"


def at_most(figure: str, limit: float) -> Target:
    return Target(figure, "<=", limit)


def under(figure: str, limit: float) -> Target:
    return Target(figure, "<", limit)


def at_least(figure: str, limit: float) -> Target:
    return Target(figure, ">=", limit)


def result(benchmark: str, figures: Figures, targets: Sequence[Target]) -> Figures:
    """The JSON line of one benchmark: its figures, its targets, and whether all were met."""
    missed = [t.figure for t in targets if not t.met(figures)]
    line: Figures = {"benchmark": benchmark, **figures}
    line["target"] = {t.figure: t.describe() for t in targets}
    line["met"] = not missed
    if missed:
        line["missed"] = missed
    return line


def emit(line: Figures) -> None:
    print(json.dumps(line), flush=True)


def ratio(value: float, bound: float) -> float:
    return round(value / bound, 3) if bound > 0 else math.inf


def seconds(value: float) -> float:
    return round(value, 4)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` between 0 and 1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# -- subprocesses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """A subprocess that ran to its end."""

    code: int
    started_at: float  # wall-clock time (time.time()) just before the process was started
    seconds: float
    max_rss_kb: int
    stdout: str
    stderr: str


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    out_dir: Path,
    name: str = "child",
    timeout: float = 120.0,
) -> Finished:
    """Run ``argv`` to its end; its wall time and its own peak RSS (``wait4``, so other
    children of this process, such as the simulator, do not count)."""
    out_path, err_path = out_dir / f"{name}.out", out_dir / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None, stdout=out, stderr=err
        )
        status, usage = _wait_with_usage(process, timeout)
        elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return Finished(
        code=process.returncode,
        started_at=started_at,
        seconds=elapsed,
        max_rss_kb=usage.ru_maxrss,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def _wait_with_usage(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int, resource.struct_rusage]:
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        raise TimeoutError(f"{' '.join(map(str, process.args))} ran over {timeout:g}s")  # type: ignore[arg-type]
    return status, usage


def best_wall(argv: Sequence[str], *, cwd: Path, repeat: int, check: bool = True) -> float:
    """The shortest wall time of ``repeat`` runs of ``argv`` (the least disturbed one)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            list(argv), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check
        )
        best = min(best, time.perf_counter() - start)
    return best


def bare_python_rss_kb(cwd: Path, out_dir: Path) -> int:
    return run_measured([PYTHON, "-c", "pass"], cwd=cwd, out_dir=out_dir, name="pass").max_rss_kb


# -- the simulator, served over a real socket ------------------------------------------------


class ServedSimulator:
    """``runner sim --port 0`` in a subprocess, with its /_sim/ controls."""

    def __init__(self, world: Path, work_dir: Path, *extra: str) -> None:
        self._argv = [*RUNNER, "sim", "--port", "0", "--config", str(world), *extra]
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._http: httpx.Client | None = None

    def __enter__(self) -> ServedSimulator:
        banner = self._work_dir / "sim.out"
        with banner.open("wb") as out, (self._work_dir / "sim.err").open("wb") as err:
            self._process = subprocess.Popen(self._argv, cwd=self._work_dir, stdout=out, stderr=err)
        self.url = self._wait_for_url(banner)
        self._http = httpx.Client(base_url=self.url, timeout=30)
        return self

    def _wait_for_url(self, banner: Path) -> str:
        assert self._process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in banner.read_text().splitlines():
                if line.startswith("runner sim listening on "):
                    return line.rsplit(" ", 1)[1]
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        problem = (self._work_dir / "sim.err").read_text()[-2000:]
        raise RuntimeError(f"the simulator did not start: {problem}")

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _get(self, path: str) -> Any:
        assert self._http is not None
        response = self._http.get(path)
        response.raise_for_status()
        return response.json()

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._get("/_sim/counters")
        return counters

    def runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._get("/_sim/runs")["data"]
        return runs

    def requests(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self._get("/_sim/requests")["data"]
        return log

    def round_trip_ms(self, count: int = 50) -> float:
        """The median time of a request the simulator answers at once (``GET /_sim/clock``:
        no injected latency, no logging): what serving over the socket costs by itself."""
        assert self._http is not None
        times = []
        for _ in range(count):
            start = time.perf_counter()
            self._http.get("/_sim/clock").raise_for_status()
            times.append(time.perf_counter() - start)
        return round(percentile(times, 0.5) * 1000, 2)

    def reset(self) -> None:
        assert self._http is not None
        self._http.post("/_sim/reset", json={}).raise_for_status()


# -- specs and worlds -----------------------------------------------------------------------

TOKEN = "bench-token"
PASSWORD = "bench-password"
SECRETS = {"COALESCE_TOKEN": TOKEN, "SNOWFLAKE_PASSWORD": PASSWORD}


def runner_env(**extra: str) -> dict[str, str]:
    """The environment of a runner subprocess: no terminal tricks, the benchmark secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "COALESCE_"))}
    env.update(SECRETS)
    env.update(extra)
    env.pop("CI", None)
    return env


def world_yaml(environments: int, *, node_seconds: float, start_delay: float = 0.0) -> str:
    """A world of ``environments`` environments of one small project."""
    lines = [
        "version: 1",
        f"tokens: [{TOKEN}]",
        "projects:",
        '  - id: "1"',
        "    name: Bench",
        "    nodes:",
        "      - {name: SRC_ORDERS, location: SRC, nodeType: Source}",
        "      - {name: STG_ORDERS, location: STG, dependsOn: [SRC_ORDERS]}",
        "environments:",
    ]
    lines += [f'  - {{id: "{i}", name: env{i}, project: "1"}}' for i in range(1, environments + 1)]
    lines += [
        "behavior:",
        f"  startDelay: {start_delay}",
        f"  nodeSeconds: {node_seconds}",
    ]
    return "\n".join(lines) + "\n"


def simple_spec(environment_id: int, url: str, runs: int) -> str:
    """A spec firing ``runs`` runs in one batch, with Basic credentials from secrets."""
    lines = [
        "version: 1",
        f'environmentID: "{environment_id}"',
        f"name: env{environment_id}",
        "coalesce:",
        f"  url: {url}",
        "  token: \"{{ secret('COALESCE_TOKEN') }}\"",
        "userCredentials:",
        "  snowflakeUsername: bench",
        "  snowflakePassword: \"{{ secret('SNOWFLAKE_PASSWORD') }}\"",
        "defaults:",
        "  parallelism: 4",
        "runs:",
    ]
    for index in range(runs):
        lines += [f"  - name: refresh-{index:04d}", '    includeNodesSelector: "{ location: STG }"']
    return "\n".join(lines) + "\n"


def apply_document(stdout: str) -> dict[str, Any]:
    """The JSON document of ``apply --format json`` (the plan text comes first on stdout)."""
    start = stdout.find("\n{\n")
    text = stdout if stdout.startswith("{") else stdout[start + 1 :]
    document: dict[str, Any] = json.loads(text)
    return document


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "date": dt.date.today().isoformat(),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
