"""What ``runner state copy`` says: what was copied where, that it was verified, what
the target held before (with ``--force``), and the locks that were not copied."""

from __future__ import annotations

from runner.render._lines import plural
from runner.render.status_output import when
from runner.state.copy import CopyResult


def render_copy_text(result: CopyResult) -> str:
    """The report, on stdout: locations as they are shown (never with a password)."""
    lines = [
        f"Copied the state at {result.source} to {result.target}: {result.copied.describe()}.",
        "Verified: every row read back from the target matches the source "
        f"(sha256 {result.digest[:16]}).",
    ]
    if result.replaced is not None:
        lines.append(f"Replaced what the target held: {result.replaced.describe()}.")
    return "\n".join(lines) + "\n"


def locks_not_copied_note(result: CopyResult) -> str | None:
    """Locks held in the source stay there: a lock belongs to an apply running against
    the source, and guards nothing in the target."""
    if not result.locks_not_copied:
        return None
    held = "; ".join(
        f"{lock.environment} by {lock.holder} on {lock.host} (pid {lock.pid}) since "
        f"{when(lock.acquired_at)}"
        for lock in result.locks_not_copied
    )
    return (
        f"note: {plural(len(result.locks_not_copied), 'lock')} in the source "
        f"{'was' if len(result.locks_not_copied) == 1 else 'were'} not copied ({held}): "
        "a lock belongs to an apply running against the source, and guards nothing in the "
        "target"
    )
