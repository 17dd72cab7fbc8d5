"""Fixtures: the example specs planned three ways, from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.plan import Baseline, Plan
from tests.render._plans import (
    CANARIES,
    CANARY_PEM,
    REPO,
    baseline_from,
    edited_baseline,
    load_examples,
    online_facts,
    plan_of,
)

VARIABLES = {"snowflake_user": "SVC_COALESCE"}


@pytest.fixture
def at_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so spec paths in plans are relative ("specs/prod.yaml")."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def with_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every secret the example specs read is set, to a canary value."""
    key = tmp_path / "home" / ".snowflake" / "rsa_key.p8"
    key.parent.mkdir(parents=True)
    key.write_text(CANARY_PEM)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return dict(CANARIES)


@pytest.fixture
def new_plan(at_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    """First plan, offline, in CI with no secrets: everything is new, secrets are warnings."""
    monkeypatch.setenv("HOME", "/home/reviewer")  # named in the missing key file's warning
    return plan_of(load_examples({}), Baseline("state", {}))


@pytest.fixture
def changed_plan(at_repo: Path, with_secrets: dict[str, str]) -> Plan:
    specs = load_examples(with_secrets, VARIABLES)
    current = plan_of(specs, Baseline("state", {}))
    serials = {"prod": 4, "staging": 3}  # 7 in all
    return plan_of(specs, edited_baseline(current), state_serials=serials, variables=VARIABLES)


@pytest.fixture
def online_plan(at_repo: Path, with_secrets: dict[str, str]) -> Plan:
    specs = load_examples(with_secrets)
    current = plan_of(specs, Baseline("state", {}))
    applied = baseline_from(current, only=("analytics", "demo", "staging"))
    return plan_of(specs, Baseline("git:origin/main", applied), facts=online_facts())
