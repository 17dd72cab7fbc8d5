"""A spec's data with where each key and value was written, and how places are named in
messages (``batches[0].runs[1].name``, ``specs/prod.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.spec.yaml_source import Pos

__all__ = ["Located", "Path_", "dotted", "extends_root", "shown_path", "work_tree_root"]

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A spec's plain data plus where each key and value was written."""

    data: Any
    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)
    templated: dict[Path_, str] = field(default_factory=dict)  # path -> template as written

    def value_pos(self, path: Path_) -> Pos:
        for cut in range(len(path), -1, -1):
            found = self.values.get(path[:cut])
            if found is not None:
                return found
        return next(iter(self.values.values()))

    def key_pos(self, path: Path_) -> Pos:
        return self.keys.get(path) or self.value_pos(path)


def shown_path(path: Path) -> str:
    """How a file is named in messages: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def dotted(path: Path_) -> str:
    """``('batches', 0, 'runs', 1, 'name')`` -> ``batches[0].runs[1].name``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def extends_root(spec: Path) -> Path:
    """Where ``extends`` may reach from ``spec``: see :func:`work_tree_root`."""
    return work_tree_root(spec.resolve().parent)


def work_tree_root(folder: Path) -> Path:
    """The root of the git work tree ``folder`` is in (a folder with ``.git``), else
    ``folder`` itself: as far as ``extends`` and ``secret_file`` may reach from a spec
    there. A spec edited in a pull request cannot make plan read a file elsewhere on the
    machine that runs it."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder
