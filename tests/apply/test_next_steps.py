"""What apply's summary tells a person to do next."""

from __future__ import annotations

from runner.apply.model import ApplyResult, RunReport, RunState
from runner.render.apply_output import next_steps


def report(name: str, state: RunState, *, counter: int | None = None) -> RunReport:
    return RunReport("prod", "b", name, state=state, run_counter=counter)


def test_runs_refused_before_firing_are_named_with_the_command_that_fires_just_them() -> None:
    result = ApplyResult(
        1,
        (
            report("ok", RunState.COMPLETED, counter=1),
            report("refused", RunState.NOT_STARTED),
            report("maybe", RunState.UNCERTAIN),
        ),
        errors=("prod/refused: 429",),
    )
    steps = next_steps(result)
    assert steps == [
        "Uncertain: Coalesce may have created 1 run(s) it does not show: 'prod/maybe'",
        "Look again with:   runner status --refresh  (or runner apply --resume)",
        "Fire them anew only with: runner apply --resume --refire-uncertain",
        "Not fired: fire just those, once the error above is fixed, with: "
        "runner apply --run prod/refused",
    ]


def test_an_interrupted_apply_points_at_cancel_and_resume_not_at_firing_again() -> None:
    result = ApplyResult(
        2,
        (report("going", RunState.RUNNING, counter=7), report("later", RunState.NOT_STARTED)),
        interrupted=True,
    )
    assert next_steps(result) == [
        "Interrupted: nothing more was fired.",
        "Still running in Coalesce:",
        "  prod/going (run 7)",
        "Cancel them with:  runner cancel --all",
        "Continue with:     runner apply --resume",
    ]
