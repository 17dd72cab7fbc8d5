"""YAML files to located trees: every key and value keeps its file, line and column.

We compose YAML with ruamel's C parser (fast, and its nodes carry marks) and build our
own small tree instead of constructing Python objects, so that:
- every value, after ``extends`` merging, still knows where it was written;
- aliases are followed with a budget, so an alias bomb is an error, not an OOM;
- nothing is rendered before parsing: templates are expanded later, leaf by leaf.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml import YAML, nodes
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.resolver import VersionedResolver

from runner.errors import Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 200_000  # after alias expansion; a spec of 10,000 runs is far below this
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"


class Pos(NamedTuple):
    """Where a value was written: 1-based line and column, and the scalar's quoting style.

    A named tuple rather than a dataclass: one is made for every key and value of every
    spec, and tuples are the cheapest to make."""

    path: str
    line: int
    col: int
    style: str | None = None

    def problem(self, message: str, *, severity: str = "error", offset: int = 0) -> Problem:
        return Problem(self.path, self.line, self.col + offset, message, severity)


@dataclass(slots=True)
class YNode:
    """A located YAML value: a scalar, a list of YNodes, or a map of str -> (key Pos, YNode)."""

    value: Any
    pos: Pos
    entries: dict[str, tuple[Pos, YNode]] | None = None
    items: list[YNode] | None = None

    @property
    def is_map(self) -> bool:
        return self.entries is not None

    @property
    def is_list(self) -> bool:
        return self.items is not None


class YamlLoadError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _pos(path: str, node: nodes.Node) -> Pos:
    mark = node.start_mark
    return Pos(path, mark.line + 1, mark.column + 1, getattr(node, "style", None) or None)


def _tag(node: nodes.Node) -> str | None:
    """The resolved tag; ``node.tag`` and ``Tag.trval`` cost microseconds a call."""
    ctag = node.ctag
    if ctag is None:
        return None
    tag: str | None = ctag.suffix if ctag.handle is None else ctag.trval
    return tag


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.budget = MAX_NODES

    def build(self, node: nodes.Node, depth: int = 0) -> YNode:
        self.budget -= 1
        if self.budget < 0:
            raise YamlLoadError(
                _pos(self.path, node).problem(
                    f"the document expands to more than {MAX_NODES:,} values "
                    "(an alias bomb?); runner refuses to expand it"
                )
            )
        if depth > MAX_DEPTH:
            raise YamlLoadError(
                _pos(self.path, node).problem(f"nesting deeper than {MAX_DEPTH} levels")
            )
        mark = node.start_mark
        if isinstance(node, nodes.ScalarNode):  # most nodes: keep this path short
            pos = Pos(self.path, mark.line + 1, mark.column + 1, node.style or None)
            return YNode(self._scalar(node), pos)
        if isinstance(node, nodes.MappingNode):
            return self._mapping(node, depth)
        items = [self.build(child, depth + 1) for child in node.value]
        return YNode(None, Pos(self.path, mark.line + 1, mark.column + 1), items=items)

    def _mapping(self, node: nodes.MappingNode, depth: int) -> YNode:
        entries: dict[str, tuple[Pos, YNode]] = {}
        merged: dict[str, tuple[Pos, YNode]] = {}
        path = self.path
        for key_node, value_node in node.value:
            mark = key_node.start_mark
            key_pos = Pos(path, mark.line + 1, mark.column + 1)
            if key_node.value == "<<" and _tag(key_node) == _MERGE:
                merged.update(self._merge_sources(value_node, depth))
                continue
            if not isinstance(key_node, nodes.ScalarNode):
                raise YamlLoadError(key_pos.problem("a key must be a plain string"))
            key = str(key_node.value)
            if key in entries:
                first = entries[key][0]
                raise YamlLoadError(
                    key_pos.problem(
                        f"duplicate key '{key}' (first written at line {first.line}); "
                        "remove one of them"
                    )
                )
            entries[key] = (key_pos, self.build(value_node, depth + 1))
        # YAML merge keys (<<: *base): explicit keys win over merged ones.
        for key, entry in merged.items():
            entries.setdefault(key, entry)
        return YNode(None, _pos(self.path, node), entries=entries)

    def _merge_sources(self, node: nodes.Node, depth: int) -> dict[str, tuple[Pos, YNode]]:
        sources = node.value if isinstance(node, nodes.SequenceNode) else [node]
        result: dict[str, tuple[Pos, YNode]] = {}
        for source in reversed(sources):
            built = self.build(source, depth + 1)
            if built.entries is None:
                raise YamlLoadError(built.pos.problem("'<<' must merge a mapping"))
            result.update(built.entries)
        return result

    def _scalar(self, node: nodes.Node) -> Any:
        text = str(node.value)
        tag = _tag(node)
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in ("true", "yes", "on", "y")
        if tag == _INT:
            return _to_int(text)
        if tag == _FLOAT:
            return _to_float(text)
        # Everything else (strings, timestamps, custom tags) stays the text as written.
        return text


def _to_int(text: str) -> int | str:
    cleaned = text.replace("_", "")
    try:
        if cleaned.lower().startswith(("0x", "-0x", "+0x")):
            return int(cleaned, 16)
        if cleaned.lower().startswith(("0o", "-0o", "+0o")):
            return int(cleaned, 8)
        return int(cleaned)
    except ValueError:
        return text


def _to_float(text: str) -> float | str:
    lowered = text.lower().replace("_", "")
    if lowered in (".inf", "+.inf"):
        return math.inf
    if lowered == "-.inf":
        return -math.inf
    if lowered == ".nan":
        return math.nan
    try:
        return float(lowered)
    except ValueError:
        return text


class _Yaml12Resolver(VersionedResolver):
    """Specs are YAML 1.2 (``yes`` and ``on`` are strings). Fixing the version here saves
    ruamel from looking it up again for every scalar, which cost a third of a load."""

    processing_version = (1, 2)


_YAML = YAML(typ="safe", pure=False)
_YAML.Resolver = _Yaml12Resolver


# libyaml recurses on flow collections and crashes the process on extreme depth,
# so such input is refused before it reaches the parser.
MAX_FLOW_DEPTH = 1000


def _flow_depth_exceeded(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return False
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_FLOW_DEPTH:
            return True
    return False


def parse_yaml(text: str, path: str) -> YNode | None:
    """Parse one YAML document into a located tree; ``None`` for an empty document."""
    if _flow_depth_exceeded(text):
        raise YamlLoadError(Problem(path, 1, 1, f"nesting deeper than {MAX_DEPTH} levels"))
    try:
        root = _YAML.compose(text)
    except MarkedYAMLError as error:
        raise YamlLoadError(_yaml_problem(path, error)) from None
    except YAMLError as error:
        raise YamlLoadError(Problem(path, 0, 0, f"not valid YAML: {error}")) from None
    except RecursionError:
        raise YamlLoadError(Problem(path, 0, 0, "nesting too deep to parse")) from None
    if root is None:
        return None
    return _Builder(path).build(root)


def _yaml_problem(path: str, error: MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    what = error.problem or "malformed YAML"
    context = f" ({error.context})" if error.context else ""
    message = f"not valid YAML: {what}{context}"
    if mark is None:
        return Problem(path, 0, 0, message)
    return Problem(path, mark.line + 1, mark.column + 1, message)


def read_spec_bytes(path: Path, shown_as: str) -> bytes:
    """The bytes of a spec file, never more than :data:`MAX_FILE_BYTES` of them read
    (a huge file, or one that grows while read, is refused without being read whole)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise YamlLoadError(
            Problem(shown_as, 0, 0, f"cannot read file: {error.strerror or error}")
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise YamlLoadError(
            Problem(shown_as, 0, 0, "the file is larger than 1 MiB; specs are limited to 1 MiB")
        )
    return raw


def parse_yaml_bytes(raw: bytes, shown_as: str) -> YNode | None:
    """Parse spec bytes; problems are reported as ``shown_as:line:col``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlLoadError(
            Problem(shown_as, 0, 0, f"not UTF-8 text (byte {error.start}); save it as UTF-8")
        ) from None
    return parse_yaml(text, shown_as)
