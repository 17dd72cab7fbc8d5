"""The schedule of a run: dependency order, parallelism, failures skipping downstream."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.sim.schedule import NodeFailure, NodePlan, plan_nodes

BOOM = NodeFailure("boom")


def test_a_chain_runs_one_after_another() -> None:
    plans = plan_nodes(["a", "b", "c"], {"b": ["a"], "c": ["b"]}, {"a": 1, "b": 2, "c": 3}, {}, 8)
    assert [(p.node_id, p.start, p.end) for p in plans] == [("a", 0, 1), ("b", 1, 3), ("c", 3, 6)]


def test_upstream_nodes_outside_the_run_do_not_hold_it_back() -> None:
    [plan] = plan_nodes(["b"], {"b": ["a"]}, {"b": 2}, {}, 1)
    assert (plan.start, plan.end, plan.outcome) == (0, 2, "complete")


def test_a_free_slot_goes_to_the_ready_node_first_in_order() -> None:
    plans = plan_nodes(["x", "y", "z"], {}, {"x": 2, "y": 1, "z": 1}, {}, 2)
    assert {p.node_id: p.start for p in plans} == {"x": 0, "y": 0, "z": 1}


def test_a_failure_skips_its_downstream_when_it_fails_and_nothing_else() -> None:
    upstream = {"b": ["a"], "c": ["b"], "d": ["x"]}
    plans = {
        p.node_id: p
        for p in plan_nodes(
            ["a", "x", "b", "c", "d"], upstream, dict.fromkeys("axbcd", 1.0), {"a": BOOM}, 4
        )
    }
    assert plans["a"] == NodePlan("a", "failed", 0, 1, failure=BOOM)
    assert plans["b"] == NodePlan("b", "skipped", skipped_at=1, blocked_by="a")
    assert plans["c"] == NodePlan("c", "skipped", skipped_at=1, blocked_by="a")
    assert plans["d"].outcome == "complete"


@st.composite
def graphs(
    draw: st.DrawFn,
) -> tuple[list[str], dict[str, list[str]], dict[str, float], set[str], int]:
    size = draw(st.integers(1, 12))
    order = [f"n{i}" for i in range(size)]
    upstream = {
        node: draw(st.lists(st.sampled_from(order[:index]), max_size=3, unique=True))
        if index
        else []
        for index, node in enumerate(order)
    }
    durations = {node: draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5])) for node in order}
    failing = set(draw(st.lists(st.sampled_from(order), max_size=2)))
    return order, upstream, durations, failing, draw(st.integers(1, 4))


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_every_schedule_keeps_order_parallelism_and_skips(
    case: tuple[list[str], dict[str, list[str]], dict[str, float], set[str], int],
) -> None:
    order, upstream, durations, failing, parallelism = case
    plans = {
        p.node_id: p
        for p in plan_nodes(order, upstream, durations, dict.fromkeys(failing, BOOM), parallelism)
    }
    assert list(plans) == order

    def tainted(node: str) -> bool:  # a node with a failed node upstream (transitively)
        return any(parent in failing or tainted(parent) for parent in upstream[node])

    windows: dict[str, tuple[float, float]] = {}
    for node, plan in plans.items():
        assert (plan.outcome == "skipped") == tainted(node)
        if plan.outcome == "skipped":
            continue
        assert plan.outcome == ("failed" if node in failing else "complete")
        assert plan.start is not None and plan.end is not None
        assert plan.end == plan.start + durations[node]
        windows[node] = (plan.start, plan.end)
    for node, (start, _) in windows.items():
        assert all(start >= windows[parent][1] for parent in upstream[node])
    for moment in {start for start, _ in windows.values()}:
        busy = [node for node, (start, end) in windows.items() if start <= moment < end]
        assert len(busy) <= parallelism
        if len(busy) < parallelism:
            # No slot stays idle while a ready node waits.
            for node, (start, _) in windows.items():
                if all(windows[parent][1] <= moment for parent in upstream[node]):
                    assert start <= moment
