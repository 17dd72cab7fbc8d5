"""Writing a file the way every file runner writes is written: whole or not at all.

The text goes to a new file of a random name beside the target, created exclusively and
never through a link (a file planted there, or a symlink, makes the write fail instead of
writing elsewhere), is flushed to disk, then renamed over the target: a reader never sees
half a file, and a link at the target is replaced, its target never written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from runner.errors import RunnerError

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str, *, mode: int, keep_existing: bool = False) -> None:
    """Write ``text`` to ``path`` with permission bits ``mode``. With ``keep_existing``,
    the file is put in place with a hard link, which fails rather than replace a file
    (or link) that appeared at ``path`` meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(partial, flags, mode)
    except OSError as error:
        raise RunnerError(
            f"cannot write {path}: {error.strerror or error}",
            hint="check that its folder exists and is writable",
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            _put_new(partial, path)  # fails, instead of replacing, if path appeared
        else:
            os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _put_new(partial: Path, path: Path) -> None:
    """Move ``partial`` to ``path``, which must not exist."""
    appeared = RunnerError(f"{path} appeared while it was written; nothing was replaced")
    try:
        os.link(partial, path, follow_symlinks=False)
    except FileExistsError:
        raise appeared from None
    except OSError:  # a file system without hard links: look, then rename
        if os.path.lexists(path):
            raise appeared from None
        os.replace(partial, path)
    else:
        os.unlink(partial)
