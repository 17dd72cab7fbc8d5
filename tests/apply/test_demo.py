"""The demo of the README: the repository's specs/demo.yaml against the embedded simulator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.sim import DEMO_TOKEN, SimApp
from runner.state import Outcome, RunStatus, open_state
from tests.apply._support import PROJECT


@pytest.fixture
def demo_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(PROJECT / "specs", tmp_path / "specs")
    monkeypatch.setenv("COALESCE_TOKEN", DEMO_TOKEN)
    return tmp_path / "specs"


def test_the_demo_reports_completed_failed_and_skipped_runs_and_exits_3(
    run_cli, demo_specs: Path, embedded_demo: SimApp, tmp_path: Path
) -> None:
    result = run_cli("apply", "specs/demo.yaml", "--auto-approve", "--poll-interval", "0.2")

    assert result.code == 3, result.text
    summary = result.out[result.out.index("Apply ") :]
    assert "2 completed, 1 failed, 1 skipped" in summary
    assert "completed     demo/stage-all (run 1, http://sim/runs/1)" in summary
    assert "completed     demo/dimensions" in summary
    assert "failed        demo/facts" in summary
    # The failed node and Coalesce's error for it, as the simulator reports them.
    assert (
        "failed node FCT_RETURNS: SQL compilation error: error line 14 at position 8 "
        "invalid identifier 'R.RETURN_REASON_CODE'"
    ) in summary
    assert "skipped       demo/marts" in summary
    assert "'facts' in batch 'core' did not complete (onFailure: stop)" in summary
    # Progress goes to stderr, one line per change (no terminal here).
    assert "demo/facts failed run" in result.err

    created = embedded_demo.simulator.all_runs()
    selectors = sorted(str(run.request.include) for run in created)
    assert len(created) == 3, "marts must not be fired after facts failed"
    assert not any("MART" in s for s in selectors)

    store = open_state(tmp_path / ".runner" / "state.db")
    try:
        last = store.last_apply()
        assert last is not None and last.outcome is Outcome.FAILED
        journal = {r.name: r for r in store.runs_of_apply(last.apply_id)}
    finally:
        store.close()
    assert journal["facts"].status is RunStatus.FAILED
    assert journal["facts"].failed_nodes[0]["name"] == "FCT_RETURNS"
    assert journal["marts"].status is RunStatus.SKIPPED and journal["marts"].run_counter is None
    counters = {run.id for run in created}
    assert {journal[n].run_counter for n in ("stage-all", "dimensions", "facts")} == counters
