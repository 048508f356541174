"""classifier.backoff: how soon a record that failed transiently under EXPRESS comes back."""

from __future__ import annotations

import pytest

from classifier.backoff import CAP_SECONDS, ceiling_seconds, redelivery_delay


def test_ceiling_grows_fourfold_per_receive_up_to_the_cap() -> None:
    # WHEN the ceiling after each receive is asked for, from the first to the seventh
    ceilings = [ceiling_seconds(receive) for receive in range(1, 8)]

    # THEN it starts at 10 s, grows four times per receive, and stops at 15 minutes
    assert ceilings == [10, 40, 160, 640, 900, 900, 900]
    assert CAP_SECONDS == 900


def test_ceiling_of_a_huge_receive_count_is_the_cap() -> None:
    # GIVEN a message received far more often than maxReceiveCount allows (a queue without
    # a redrive policy)
    # WHEN its ceiling is asked for THEN it is the cap, computed without a huge power
    assert ceiling_seconds(10**9) == CAP_SECONDS


@pytest.mark.parametrize("receive", [0, -3])
def test_receive_count_below_one_counts_as_the_first(receive: int) -> None:
    # GIVEN a count no SQS record has (Lambda's first delivery says 1)
    # WHEN its ceiling is asked for THEN it is the first receive's
    assert ceiling_seconds(receive) == 10


def test_delay_is_drawn_between_zero_and_the_ceiling() -> None:
    # GIVEN a jitter that records its bounds and picks a value inside them
    asked: list[tuple[int, int]] = []

    def jitter(low: int, high: int) -> int:
        asked.append((low, high))
        return 27

    # WHEN the delay after a third receive is drawn
    delay = redelivery_delay(3, jitter)

    # THEN it was drawn with full jitter, from 0 to that receive's ceiling (160 s)
    assert asked == [(0, 160)]
    assert delay == 27


@pytest.mark.parametrize(("drawn", "expected"), [(-5, 0), (161, 160)])
def test_delay_outside_its_bounds_is_clamped(drawn: int, expected: int) -> None:
    # GIVEN a jitter answering outside the bounds it was given
    # WHEN the delay is drawn THEN it stays within what SQS accepts and the ceiling
    assert redelivery_delay(3, lambda _low, _high: drawn) == expected
