"""Nodes Coalesce skipped because a node upstream of them failed are shown as skipped,
after the failed ones: in the summary, the markdown report and the JSON document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runner.apply.results import failed_nodes
from runner.coalesce import RunResult
from runner.sim import SimApp
from tests.apply._support import batch, run, world, write_spec

# F1 fails; M1, downstream of it, is skipped by Coalesce.
F1_FAILS = {"failures": [{"name": "F1", "error": "SQL compilation error: no such table"}]}
F1_AND_DOWNSTREAM = "{ name: F1 }+"


def test_skipped_nodes_are_shown_as_skipped_after_the_failed_ones(
    run_cli, embed: Callable[..., SimApp], specs: Path, tmp_path: Path
) -> None:
    embed(world(behavior=F1_FAILS))
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("marts", F1_AND_DOWNSTREAM)])])
    report = tmp_path / "report.md"

    text = run_cli("apply", "--auto-approve", "--poll-interval", "0.02", "--report", str(report))

    assert text.code == 3, text.text
    failed = "      failed node F1: SQL compilation error: no such table"
    skipped = "      skipped node M1: Skipped because upstream node FACT.F1 failed"
    lines = text.out.splitlines()
    at = {
        prefix: next(i for i, x in enumerate(lines) if x.startswith(prefix))
        for prefix in (failed, skipped)
    }
    assert at[failed] < at[skipped]
    assert "failed node M1" not in text.out
    markdown = report.read_text()
    assert "| failed nodes | skipped nodes |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| alpha | b | marts |"))
    *_, failed_cell, skipped_cell = row.removesuffix(" |").split(" | ")
    assert failed_cell.startswith("F1: SQL compilation error: no such table")
    assert skipped_cell.startswith("M1: Skipped because upstream node FACT.F1 failed")

    document = json.loads(
        run_cli("apply", "--auto-approve", "--format", "json", "--poll-interval", "0.02").out
    )
    (marts,) = document["runs"]
    assert [(n["name"], n["status"]) for n in marts["failedNodes"]] == [("F1", "failed")]
    assert [(n["name"], n["status"]) for n in marts["skippedNodes"]] == [("M1", "skipped")]
    assert marts["skippedNodes"][0]["error"].startswith("Skipped because upstream node FACT.F1")


def test_a_node_is_skipped_by_its_run_state_or_else_by_its_queries() -> None:
    def node(name: str, state: str | None, status: str) -> RunResult:
        error = {"errorString": f"{name}: {status}"}
        query = {"name": "q", "status": status, "success": False, "error": error}
        return RunResult.model_validate(
            {"nodeID": name, "name": name, "runState": state, "queryResults": [query]}
        )

    nodes = failed_nodes(
        [
            node("DOWN", "skipped", "Skipped"),
            node("OLD_DOWN", None, "Skipped"),  # no runState: its queries say it
            node("BROKEN", "failed", "Failed"),
            node("OLD_BROKEN", None, "Failed"),
        ]
    )

    assert [(n.name, n.status) for n in nodes] == [
        ("BROKEN", "failed"),
        ("OLD_BROKEN", "failed"),
        ("DOWN", "skipped"),
        ("OLD_DOWN", "skipped"),
    ]
