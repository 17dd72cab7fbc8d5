"""Journal writes made together are committed together, and each caller learns its fate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runner.apply.group_commit import GroupCommit
from runner.state import SqlState, open_state


def intent(store, apply_id: int, name: str):
    return lambda: store.record_intent(apply_id, "e", "b", name, {"n": name}, f"h-{name}")


def begin(store: SqlState) -> int:
    return store.begin_apply(who="w", host="h", git_commit=None, environments=["e"], argv=[])


async def test_writes_made_together_share_commits_and_each_gets_its_result(
    tmp_path: Path,
) -> None:
    store = open_state(tmp_path / "s.db")
    apply_id = begin(store)
    serial_before = store.serial()
    commits: list[str] = []
    real_batch = store.batch

    def counted_batch(doing: str = "record several runs"):
        commits.append(doing)
        return real_batch(doing)

    store.batch = counted_batch  # type: ignore[method-assign]
    journal = GroupCommit(store)
    ids = await asyncio.gather(
        *(journal.write(intent(store, apply_id, f"r{i}")) for i in range(20))
    )
    assert len(set(ids)) == 20
    names = [r.name for r in store.runs_of_apply(apply_id)]
    assert sorted(names) == sorted(f"r{i}" for i in range(20))
    assert store.serial() == serial_before + 20  # every write is recorded as its own step
    assert 1 <= len(commits) < 20  # in fewer commits than writes
    store.close()


async def test_a_batch_that_fails_commits_nothing_and_tells_every_writer(tmp_path: Path) -> None:
    store = open_state(tmp_path / "s.db")
    apply_id = begin(store)
    journal = GroupCommit(store)

    def broken() -> None:
        raise ValueError("refused")

    results = await asyncio.gather(
        journal.write(intent(store, apply_id, "a")),
        journal.write(broken),
        return_exceptions=True,
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert store.runs_of_apply(apply_id) == []
    # The next write goes through on its own.
    assert await journal.write(intent(store, apply_id, "b"))
    assert [r.name for r in store.runs_of_apply(apply_id)] == ["b"]
    store.close()


def test_batch_rolls_back_every_write_when_one_fails(tmp_path: Path) -> None:
    store = open_state(tmp_path / "s.db")
    apply_id = begin(store)
    with pytest.raises(ValueError), store.batch():
        intent(store, apply_id, "a")()
        raise ValueError("later write refused")
    assert store.runs_of_apply(apply_id) == []
    store.close()
