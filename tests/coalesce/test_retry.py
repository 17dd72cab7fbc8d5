from __future__ import annotations

import email.utils

import pytest

from runner.coalesce import RetryPolicy
from runner.coalesce.retry import parse_retry_after

EPOCH = 1_800_000_000.0


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert [policy.backoff(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.backoff(3, 0.0) == 0.0
    assert policy.backoff(3, 0.25) == 1.0


def test_next_delay_stops_at_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0)
    assert policy.next_delay(2, elapsed=0.0, retry_after=None, draw=0.5) == 1.0
    assert policy.next_delay(3, elapsed=0.0, retry_after=None, draw=0.5) is None


def test_next_delay_never_runs_past_the_total_time() -> None:
    policy = RetryPolicy(max_attempts=10, max_total=10.0)
    assert policy.next_delay(1, elapsed=4.0, retry_after=6.0, draw=0.5) == 6.0
    assert policy.next_delay(1, elapsed=4.0, retry_after=6.5, draw=0.5) is None


def test_retry_after_replaces_the_drawn_wait_even_above_the_cap() -> None:
    policy = RetryPolicy(max_delay=2.0, max_total=60.0)
    assert policy.next_delay(1, elapsed=0.0, retry_after=20.0, draw=0.9) == 20.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (email.utils.formatdate(EPOCH + 12, usegmt=True), 12.0),
        (email.utils.formatdate(EPOCH - 30, usegmt=True), 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=lambda: EPOCH) == seconds


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
