"""Benchmark: parse and resolve 1,000 varied selectors against a 5,000-node graph.

Run alone with ``python -m tests.bench.bench_selectors`` (or with all the others:
``python -m tests.bench``). Prints one JSON object per line:

* ``selectors``: parsing and resolving every selector (include and, for some, exclude)
  on a freshly built graph, so nothing is cached yet. The target is 1 s. The bound,
  measured in the same run, is the simplest possible approach's floor: one pass over all
  nodes per selector that tests a single precompiled glob against each node's name.
  A real naive resolver would do at least that much work (and more for lineage).
* ``selectors_warm``: the same selectors again on the same graph, as when a plan resolves
  runs that share terms; its bound is the cold run.

Building the graph is timed on its own (``graph_build_seconds``): it happens once per
environment, not once per selector.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runner.selectors import Node, NodeGraph, parse_selector, resolve
from tests.bench._common import Figures, byte_compile_package, emit, result, under

NODE_COUNT = 5_000
SELECTOR_COUNT = 1_000
TARGET_SECONDS = 1.0
SEED = 20261128

_PREFIXES = ["SRC", "STG", "WRK", "DIM", "FCT", "AGG", "RPT"]
_WORDS = [
    "ORDERS",
    "CUSTOMER",
    "SUPPLIER",
    "REGION",
    "NATION",
    "PART",
    "PARTSUPP",
    "LINEITEM",
    "INVOICE",
    "PAYMENT",
    "SHIPMENT",
    "RETURNS",
    "CAMPAIGN",
    "SESSION",
    "PRODUCT",
    "INVENTORY",
]
_LOCATIONS = ["RAW", "SAMPLE", "STAGING", "STG", "WORK", "MART", "BI", "TARGET", "PROD", "ARCHIVE"]
_TYPES = ["Source", "Stage", "Persistent Stage", "Work", "Dimension", "Fact", "View", "Export"]
_SUBGRAPHS = [f"Subgraph {letter}{n}" for letter in "ABCDEF" for n in range(5)]


def build_nodes(rng: random.Random) -> list[Node]:
    """A random DAG: each node reads up to three earlier nodes, mostly recent ones."""
    nodes = []
    for i in range(NODE_COUNT):
        layer = min(i * len(_PREFIXES) // NODE_COUNT, len(_PREFIXES) - 1)
        name = f"{_PREFIXES[layer]}_{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{i:04d}"
        deps: set[str] = set()
        if i:
            for _ in range(rng.randint(0 if layer == 0 else 1, 3)):
                deps.add(str(max(0, i - 1 - int(rng.expovariate(1 / 200)))))
        subgraphs = tuple(rng.sample(_SUBGRAPHS, rng.choice([0, 0, 0, 1, 1, 2])))
        nodes.append(
            Node(
                id=str(10_000 + i),
                name=name,
                location=_LOCATIONS[min(layer + rng.randint(0, 3), len(_LOCATIONS) - 1)],
                node_type=rng.choice(_TYPES),
                subgraphs=subgraphs,
                depends_on=tuple(str(10_000 + int(dep)) for dep in sorted(deps)),
            )
        )
    rng.shuffle(nodes)
    return nodes


def build_selectors(rng: random.Random, nodes: list[Node]) -> list[tuple[str, str | None]]:
    """(include, exclude) texts in the shapes specs use, drawn at random."""

    def some_node() -> Node:
        return rng.choice(nodes)

    def term() -> str:
        node = some_node()
        prefix, first, second, number = node.name.split("_")
        body = rng.choice(
            [
                f"{{ name: {node.name} }}",
                f"{{ {node.name.lower()} }}",
                f"{{ name: {prefix}_{first}* }}",
                f"{{ name: {prefix}_{first}_{second}_* }}",
                f"{{ name: *_{second}_{number} }}",
                f"{{ name: *{first}* location: {node.location} }}",
                f"{{ name: {node.name[:-2]}?? }}",
                f"{{ location: {node.location} }}",
                f"{{ location: {node.location} nodeType: '{node.node_type}' }}",
                f'{{ subgraph: "{rng.choice(_SUBGRAPHS)}" }}',
                f"{{ nodeID: {node.id} }}",
                f"{{ nodeType: '{rng.choice(_TYPES)}', location: {node.location} }}",
            ]
        )
        lineage = rng.random()
        if lineage < 0.15:
            return body + "+"
        if lineage < 0.25:
            return "+" + body
        return body

    def expression() -> str:
        parts = [term()]
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            parts.append(rng.choice([" OR ", " || ", " AND ", ", ", " "]))
            parts.append(term())
        return "".join(parts)

    return [
        (expression(), expression() if rng.random() < 0.3 else None) for _ in range(SELECTOR_COUNT)
    ]


def _timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def _resolve_all(graph: NodeGraph, selectors: list[tuple[str, str | None]]) -> int:
    total = 0
    for include, exclude in selectors:
        excluded = parse_selector(exclude) if exclude is not None else None
        total += len(resolve(parse_selector(include), excluded, graph))
    return total


def _naive_floor(nodes: list[Node], selectors: list[tuple[str, str | None]]) -> int:
    """One pass over every node per selector, one precompiled glob test per node."""
    names = [node.name.lower() for node in nodes]
    patterns = [re.compile(re.escape(include[2:6].lower()) + ".*") for include, _ in selectors]
    return sum(sum(1 for name in names if pattern.fullmatch(name)) for pattern in patterns)


def run(work_dir: Path | None = None) -> list[Figures]:
    del work_dir  # everything happens in memory
    rng = random.Random(SEED)
    nodes = build_nodes(rng)
    selectors = build_selectors(rng, nodes)

    build_seconds, built = _timed(lambda: NodeGraph(nodes))
    graph = built if isinstance(built, NodeGraph) else NodeGraph(nodes)
    cold_seconds, selected = _timed(lambda: _resolve_all(graph, selectors))
    warm_seconds, _ = _timed(lambda: _resolve_all(graph, selectors))
    floor_seconds, _ = _timed(lambda: _naive_floor(nodes, selectors))

    cold: Figures = {
        "seconds": round(cold_seconds, 4),
        "target_seconds": TARGET_SECONDS,
        "ratio_to_target": round(cold_seconds / TARGET_SECONDS, 3),
        "bound": "one glob test per node per selector, simplest loop",
        "bound_seconds": round(floor_seconds, 4),
        "ratio_to_bound": round(cold_seconds / floor_seconds, 3),
        "graph_build_seconds": round(build_seconds, 4),
        "nodes": NODE_COUNT,
        "selectors": SELECTOR_COUNT,
        "nodes_selected": selected,
        "cycles": len(graph.cycles),
    }
    warm: Figures = {
        "seconds": round(warm_seconds, 4),
        "target_seconds": TARGET_SECONDS,
        "ratio_to_target": round(warm_seconds / TARGET_SECONDS, 3),
        "bound": "the same selectors on a fresh graph (selectors)",
        "bound_seconds": round(cold_seconds, 4),
        "ratio_to_bound": round(warm_seconds / cold_seconds, 3),
    }
    target = [under("seconds", TARGET_SECONDS)]
    return [result("selectors", cold, target), result("selectors_warm", warm, target)]


def main() -> None:
    byte_compile_package()
    with tempfile.TemporaryDirectory(prefix="bench-selectors-") as folder:
        for line in run(Path(folder)):
            emit(line)


if __name__ == "__main__":
    main()
