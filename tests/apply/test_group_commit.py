"""Journal writes made together are committed together, and each caller learns its fate:
on SQLite, and on PostgreSQL where a batch's statements go in one pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.apply.executor import Executor
from runner.apply.group_commit import GroupCommit
from runner.errors import RunnerError
from runner.sim import SimApp
from runner.state import Fired, NewRun, RunStatus, SqlState, open_state
from tests.apply._support import batch, run, write_spec


@pytest.fixture
def store(any_state: str) -> Iterator[SqlState]:
    with open_state(any_state) as opened:
        yield opened


def new_run(apply_id: int, name: str, environment: str = "e") -> NewRun:
    return NewRun(apply_id, environment, "b", name, {"n": name}, f"h-{name}")


def begin(store: SqlState) -> int:
    return store.begin_apply(who="w", host="h", git_commit=None, environments=["e"], argv=[])


def counting_commits(store: SqlState) -> list[str]:
    commits: list[str] = []
    real_batch = store.batch

    def counted_batch(doing: str = "record several runs"):
        commits.append(doing)
        return real_batch(doing)

    store.batch = counted_batch  # type: ignore[method-assign]
    return commits


async def test_writes_made_together_share_commits_and_each_gets_its_result(
    store: SqlState,
) -> None:
    apply_id = begin(store)
    commits = counting_commits(store)
    journal = GroupCommit(store)

    ids = await asyncio.gather(*(journal.intent(new_run(apply_id, f"r{i}")) for i in range(20)))
    await asyncio.gather(*(journal.fired(Fired(run_id, 100 + i)) for i, run_id in enumerate(ids)))

    runs = {run.run_id: run for run in store.runs_of_apply(apply_id)}
    assert sorted(runs) == sorted(ids) and len(set(ids)) == 20
    assert [(runs[run_id].name, runs[run_id].run_counter) for run_id in ids] == [
        (f"r{i}", 100 + i) for i in range(20)
    ]
    assert {run.status for run in runs.values()} == {RunStatus.WAITING_TO_RUN}
    assert store.serials(["e"]) == {"e": 40}  # every write is recorded as its own step
    assert 2 <= len(commits) < 40  # in fewer commits than writes


async def test_a_refused_runcounter_fails_its_own_writer_only(store: SqlState) -> None:
    """A runCounter the journal refuses (the run was already fired as another; no such
    run) changes nothing: the runs committed with it are recorded all the same."""
    apply_id = begin(store)
    journal = GroupCommit(store)
    first, second = await asyncio.gather(
        journal.intent(new_run(apply_id, "a")), journal.intent(new_run(apply_id, "b"))
    )

    results = await asyncio.gather(
        journal.fired(Fired(first, 1)),
        journal.fired(Fired(first, 99)),
        journal.fired(Fired(404, 3)),
        journal.fired(Fired(second, 2)),
        return_exceptions=True,
    )

    assert results[0] is None and results[3] is None
    assert isinstance(results[1], ValueError)
    assert "already fired as runCounter 1; refusing to record runCounter 99" in str(results[1])
    assert isinstance(results[2], LookupError)
    counters = {run.name: run.run_counter for run in store.runs_of_apply(apply_id)}
    assert counters == {"a": 1, "b": 2}
    # the refused write's place among the batch's is a gap in the serials, never reused
    assert store.serials(["e"]) == {"e": 5}


async def test_a_batch_that_fails_commits_nothing_and_tells_every_writer(
    store: SqlState,
) -> None:
    apply_id = begin(store)
    journal = GroupCommit(store)

    results = await asyncio.gather(
        journal.intent(new_run(apply_id, "a")),
        journal.intent(new_run(apply_id, "x", environment="not-in-this-apply")),
        return_exceptions=True,
    )

    assert all(isinstance(r, ValueError) for r in results)
    assert store.runs_of_apply(apply_id) == []
    # The next write goes through on its own.
    assert await journal.intent(new_run(apply_id, "b"))
    assert [r.name for r in store.runs_of_apply(apply_id)] == ["b"]


def test_batch_rolls_back_every_write_when_one_fails(tmp_path: Path) -> None:
    store = open_state(tmp_path / "s.db")
    apply_id = begin(store)
    with pytest.raises(ValueError), store.batch():
        store.record_intents([new_run(apply_id, "a")])
        raise ValueError("later write refused")
    assert store.runs_of_apply(apply_id) == []
    store.close()


def test_an_apply_whose_runcounter_is_refused_reports_that_run_and_finishes_the_others(
    run_cli: Any, embedded: SimApp, specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a `status --refresh`, say) recorded another runCounter for a run
    between its startRun and apply's record of it. That run is reported uncertain with
    both numbers, nothing is fired again, and its siblings are waited for to their end."""
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("r1"), run("r2"), run("r3")])])
    record_fired = Executor._fired
    recorded_first: list[int] = []

    async def another_process_first(self: Executor, env: Any, job: Any, counter: int) -> None:
        if not recorded_first:
            journal_id = self.reports[job.identity].journal_id
            assert journal_id is not None
            with open_state(Path(".runner/state.db")) as other:
                other.record_fired(journal_id, 999999)
            recorded_first.append(counter)
        await record_fired(self, env, job, counter)

    monkeypatch.setattr(Executor, "_fired", another_process_first)
    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code == 5, result.text  # a run is uncertain: a person looks
    assert "but the journal refused to record that" in result.text
    assert "internal error" not in result.text
    with open_state(Path(".runner/state.db")) as store:
        last = store.last_apply()
        assert last is not None
        journal = {r.run_counter: r.status for r in store.runs_of_apply(last.apply_id)}
    assert journal[999999] == RunStatus.WAITING_TO_RUN  # as the other process wrote it
    assert sorted(status for counter, status in journal.items() if counter != 999999) == [
        RunStatus.COMPLETED,
        RunStatus.COMPLETED,
    ]
    assert len(embedded.simulator.all_runs()) == 3  # nothing fired again


def test_runs_fired_when_the_state_fails_are_reported_fired_and_resume_records_them(
    run_cli: Any, embedded: SimApp, specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state fails as apply records the runCounters of runs Coalesce started: they
    are reported uncertain with their runCounters (never "not fired", with a command
    to fire them), and `--resume` finds them in Coalesce without firing anything again."""
    write_spec(specs, "alpha", "1", "sim://", [batch("b", [run("r1"), run("r2")])])
    record_fired_each = SqlState.record_fired_each

    def failing(self: SqlState, fired: Any) -> Any:
        if fired:
            raise RunnerError("cannot record a fired run: the state said: disk I/O error")
        return record_fired_each(self, fired)

    monkeypatch.setattr(SqlState, "record_fired_each", failing)
    result = run_cli("apply", "--auto-approve", "--poll-interval", "0.02")

    assert result.code != 0
    assert "not fired" not in result.text
    assert "but the journal could not record that" in result.text
    monkeypatch.setattr(SqlState, "record_fired_each", record_fired_each)
    resumed = run_cli("apply", "--resume", "--auto-approve", "--poll-interval", "0.02")
    assert resumed.code == 0, resumed.text
    assert len(embedded.simulator.all_runs()) == 2  # found, not fired again
