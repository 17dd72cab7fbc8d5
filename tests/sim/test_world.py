"""World files: the documented format, its errors, and the built-in demo world."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from runner.sim import ManualClock, WorldError, create_app, demo_world, load_world, parse_world
from runner.sim.engine import Simulator
from runner.sim.graph import build_graph
from runner.sim.runs import RunRequest
from runner.sim.selection import select_nodes

WORLD_YAML = """\
version: 1
tokens: [abc]
projects:
  - id: 1
    name: P
    nodes:
      - {name: A, location: SRC}
      - {name: B, location: STG, dependsOn: [A]}
      - {name: B, location: DIM, dependsOn: [STG.B]}
    jobs:
      - {id: 5, name: all staging, include: "{ location: STG }"}
environments:
  - {id: 10, name: dev, project: 1}
"""


def test_a_world_file_loads_with_integer_ids_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(WORLD_YAML)
    world = load_world(path)
    assert world.environments[0].id == "10" and world.projects[0].jobs[0].id == "5"
    graph = build_graph(world.projects[0])
    names = [f"{graph.nodes[n].location}.{graph.nodes[n].name}" for n in graph.order]
    assert names == ["SRC.A", "STG.B", "DIM.B"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nprojects: []\ncolour: red\n", "colour: Extra inputs are not permitted"),
        ("version: 2\n", "version: Input should be 1"),
        ("environments:\n  - {id: 1, name: a, project: 9}\n", "names project '9'"),
        (
            "projects: [{id: 1, name: P, nodes: [{name: A, location: X, size: 3}]}]\n",
            "projects[0].nodes[0].size: Extra inputs are not permitted",
        ),
        (
            "behavior: {failures: [{name: A, probability: 1.5}]}\n",
            "behavior.failures[0].probability",
        ),
        ("environments: [{id: a1, name: a, project: 1}]\n", "environments[0].id"),
        ("tokens: []\n", "tokens"),
        ("projects: [\n", "invalid YAML"),
    ],
)
def test_a_bad_world_file_says_where_and_what(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(WorldError) as raised:
        load_world(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
    assert "docs/simulator.md" in str(raised.value)


def test_a_missing_world_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorldError, match="cannot read the world file"):
        load_world(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            [{"name": "A", "location": "L", "dependsOn": ["Z"]}],
            "dependsOn names 'Z', which is not a node",
        ),
        (
            [
                {"name": "A", "location": "L", "dependsOn": ["B"]},
                {"name": "B", "location": "L", "dependsOn": ["A"]},
            ],
            "form a cycle: A, B",
        ),
        (
            [
                {"name": "B", "location": "L1"},
                {"name": "B", "location": "L2"},
                {"name": "C", "location": "L1", "dependsOn": ["B"]},
            ],
            "exists in several locations",
        ),
    ],
)
def test_bad_dependencies_are_world_errors(nodes: list[dict[str, object]], message: str) -> None:
    world = {"projects": [{"id": "1", "name": "P", "nodes": nodes}]}
    with pytest.raises(WorldError, match=message):
        _load(world)


def _load(data: Mapping[str, object]) -> None:
    Simulator(parse_world(data), clock=ManualClock())


def test_a_job_with_a_malformed_selector_is_a_world_error() -> None:
    world = {
        "projects": [{"id": "1", "name": "P", "jobs": [{"id": "1", "name": "J", "include": "{ a"}]}]
    }
    with pytest.raises(WorldError, match=r"job 1 \(J\): the include selector is not valid"):
        _load(world)


def test_the_demo_world_is_a_realistic_star_schema() -> None:
    world = demo_world()
    assert world.tokens[0] == "sim-demo-token"
    statuses = {env.name: env.status for env in world.environments}
    assert statuses == {"dev": "Waiting", "prod": "Waiting", "qa": "Failed Deploy"}
    [project] = world.projects
    graph = build_graph(project)
    assert len(graph.nodes) >= 30
    locations = Counter(node.location for node in graph.nodes.values())
    assert set(locations) == {"SRC", "STG", "DIM", "FACT", "MART"}
    by_location = {n.id: n.location for n in graph.nodes.values()}
    allowed = {
        "STG": {"SRC"},
        "DIM": {"STG", "DIM"},
        "FACT": {"STG", "DIM"},
        "MART": {"FACT", "DIM", "MART"},
    }
    for node in graph.nodes.values():
        upstream = {by_location[u] for u in node.depends_on}
        assert upstream <= allowed.get(node.location, set()), node.name
    for job in project.jobs:
        assert select_nodes(graph, job.include, job.exclude), job.name
    failing = {rule.name for rule in world.behavior.failures}
    assert failing and failing <= {node.name for node in graph.nodes.values()}


def test_a_full_demo_run_takes_a_few_seconds() -> None:
    app = create_app(clock=ManualClock())
    run = app.simulator.start_run(RunRequest(environment_id="2"), {})
    assert 1.0 < run.finished_at - run.created < 5.0
    assert run.has_failures  # prod always fails one fact
