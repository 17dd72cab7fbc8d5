"""``runner import`` on the command line: where the spec goes, what is refused, and what
is said."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.runtime
from runner.sim import DEMO_TOKEN, SimApp, create_app
from tests.conftest import CliResult

STAGING = {
    "runDetails": {"environmentID": "1", "includeNodesSelector": "{ location: STG }"},
    "userCredentials": {"snowflakeAuthType": "OAuth"},
}


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimApp]:
    app = create_app()
    monkeypatch.setattr(runner.runtime, "SIMULATOR", httpx.ASGITransport(app=app))
    monkeypatch.setenv("COALESCE_TOKEN", DEMO_TOKEN)
    yield app


def _fire(app: SimApp, body: dict[str, Any]) -> None:
    import asyncio

    async def post() -> None:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            answer = await client.post("/scheduler/startRun", json=body, headers=headers)
            assert answer.status_code == 200, answer.text

    asyncio.run(post())


def test_writes_specs_name_yaml_and_says_what_it_did(
    sim: SimApp, run_cli: Callable[..., CliResult]
) -> None:
    _fire(sim, STAGING)
    result = run_cli("import", "1", "--url", "sim://")
    assert result.code == 0, result.text
    assert result.out == ""
    assert "Wrote specs/dev.yaml: 4 job run(s) and 1 ad-hoc run(s), from 1 refresh run(s)" in (
        result.err
    )
    assert "Next: runner validate specs/dev.yaml && runner plan specs/dev.yaml" in result.err
    text = Path("specs/dev.yaml").read_text(encoding="utf-8")
    assert 'url: "sim://"' in text and 'snowflakeAuthType: "OAuth"' in text
    assert "snowflakePassword" not in text
    assert run_cli("validate", "specs/dev.yaml").code == 0


def test_an_existing_file_is_replaced_only_with_force(
    sim: SimApp, run_cli: Callable[..., CliResult]
) -> None:
    Path("specs").mkdir()
    Path("specs/mine.yaml").write_text("# my own spec\n")
    refused = run_cli("import", "1", "--url", "sim://", "--name", "mine")
    assert refused.code == 1
    assert "specs/mine.yaml already exists; nothing was written" in refused.err
    assert "--force" in refused.err
    assert Path("specs/mine.yaml").read_text() == "# my own spec\n"
    assert list(Path("specs").iterdir()) == [Path("specs/mine.yaml")]

    replaced = run_cli("import", "1", "--url", "sim://", "--name", "mine", "--force")
    assert replaced.code == 0, replaced.text
    assert 'name: "mine"' in Path("specs/mine.yaml").read_text()


def test_out_dash_prints_the_spec_and_writes_nothing(
    sim: SimApp, run_cli: Callable[..., CliResult]
) -> None:
    result = run_cli("import", "2", "--url", "sim://", "--out", "-")
    assert result.code == 0, result.text
    assert result.out.startswith("# yaml-language-server")
    assert 'environmentID: "2"' in result.out
    assert not Path("specs").exists()
    assert "Printed the spec" in result.err


def test_json_for_scripts(sim: SimApp, run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    _fire(sim, STAGING)
    result = run_cli("import", "1", "--url", "sim://", "--format", "json", "--out", "dev.yaml")
    assert result.code == 0, result.text
    document = json.loads(result.out)
    assert document["formatVersion"] == 1 and document["kind"] == "runner-import"
    assert document["path"] == "dev.yaml"
    assert document["spec"]["environmentID"] == "1"
    assert [run["source"] for run in document["runs"]] == ["job"] * 4 + ["ad-hoc"]
    adhoc = document["runs"][-1]
    assert adhoc["runs"] == [1]
    assert adhoc["request"]["runDetails"]["includeNodesSelector"] == "{ location: STG }"
    assert Path("dev.yaml").read_text(encoding="utf-8") == document["yaml"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("import", "prod"), "'prod' is not a Coalesce environment ID"),
        (("import", "1", "--name", "-bad name"), "is not a spec name"),
        (("import", "1", "--since", "fortnight"), "'fortnight' is not a time span"),
        (("import", "1", "--since", "0d"), "is not between one minute and ten years"),
        (("import", "1", "--url", "https://example.com"), "example.com"),
        (("import", "99", "--url", "sim://"), "Environment 99 not found"),
    ],
)
def test_bad_input_is_a_plain_error(
    sim: SimApp, run_cli: Callable[..., CliResult], args: tuple[str, ...], says: str
) -> None:
    result = run_cli(*args)
    assert result.code in (1, 2)
    assert says in result.err
    assert "Traceback" not in result.err
    assert not Path("specs").exists()


def test_without_a_token_nothing_is_read(
    run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("import", "1", "--url", "sim://")
    assert result.code == 1
    assert "COALESCE_TOKEN is not set" in result.err


def test_since_reads_weeks_days_hours_and_minutes() -> None:
    import datetime as dt

    from runner.importing import parse_since

    assert parse_since("2w") == dt.timedelta(days=14)
    assert parse_since("1d12h") == dt.timedelta(hours=36)
    assert parse_since(" 90m ") == dt.timedelta(minutes=90)


def test_a_link_at_out_is_never_replaced_without_force_nor_a_folder_written(
    sim: SimApp, run_cli: Callable[..., CliResult]
) -> None:
    Path("specs").mkdir()
    Path("specs/mine.yaml").symlink_to("nowhere.yaml")  # a link to nothing is still there
    refused = run_cli("import", "1", "--url", "sim://", "--out", "specs/mine.yaml")
    assert refused.code == 1 and "already exists; nothing was written" in refused.err
    assert Path("specs/mine.yaml").is_symlink() and not Path("specs/nowhere.yaml").exists()

    folder = run_cli("import", "1", "--url", "sim://", "--out", "specs", "--force")
    assert folder.code == 1 and "specs is a folder; nothing was written" in folder.err
