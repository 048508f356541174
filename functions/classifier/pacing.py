"""Limit how many Standard executions all classifier invocations start a second (STANDARD only).

Under STANDARD the classifier starts executions asynchronously, so the event source mappings'
MaximumConcurrency bounds how fast executions *start*, not how many images call DetectLabels
at once: unlimited, a backlog starts every image within a second or two, they all meet the
DetectLabels quota together, and each throttling retry is a billed state transition. The
queue becomes the rate limiter again when starts are limited to the quota.

The limit is shared by every invocation, however many run: a fixed one-second window counter
in the results table. The item ``pk = START_RATE#<epoch second>`` (never an https URL, as
the ``EXECUTION#`` and ``REJECTION#`` markers) counts the starts of that second; a start adds
one to it on condition that fewer than the rate were counted, so at most ``floor(rate)``
starts are granted per window, whatever the number of invocations. A refused start waits for
the next second (plus a little jitter, so the waiters do not all write at the same instant)
and tries again. The n-th start of a window is made no earlier than ``(n - 1) / rate`` into
it, so a window's starts are spread over the second instead of all meeting DetectLabels at
its beginning; and a start that comes when the window's count lags behind the clock (its
earlier slots went unused) skips the slots whose time has passed, counting them as used, so
a window's unused capacity is not spent in a burst at its end. Skipping costs one more write,
at most once per start. Items expire through the table's TTL attribute ``expires_at``.

A start that ends up running no execution (it already existed, or StartExecution failed)
gives its slot back while its window lasts; a slot given back later, or never because the
container died, is lost: it only lowers that second's throughput.

The window uses the wall clock: every container's, kept in sync by Lambda, so all agree on
which second it is; a container whose clock is off by a fraction of a second only shifts
its own starts within the window.

Libraries checked: pyrate-limiter and limits (both well kept) keep their counters in memory,
Redis, SQL or MongoDB, not DynamoDB, and answer "allowed now?" or wait with a delay fixed when
the limiter is built; here the wait budget shrinks with the invocation's remaining time, and
a record whose slot does not fit must be handed back untouched. The conditional UpdateItem
below is the whole algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# pk of a window's counter; the IAM policy lets the classifier update these items only.
WINDOW_PREFIX = "START_RATE#"
WINDOW_SORT_KEY = "WINDOW"
# A window item is useless once its second has passed; TTL deletes it (within days, as TTL
# does) from an hour on.
WINDOW_TTL_SECONDS = 3_600
# Refused: retry this long after the next window opens, at most (drawn uniformly).
RETRY_JITTER_SECONDS = 0.05


@dataclass(frozen=True)
class Slot:
    """A start granted in the window of epoch second ``window``."""

    window: int


class StartLimiter:
    """At most ``floor(rate)`` starts per wall-clock second across every container.

    ``clock`` is the wall clock (epoch seconds), ``sleep`` waits, ``jitter(a, b)`` draws a
    number in [a, b]; all three are injected so tests run exactly and instantly.
    """

    def __init__(
        self,
        rate: float,
        *,
        dynamodb: DynamoDBClient,
        table: str,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        jitter: Callable[[float, float], float],
    ) -> None:
        if not (math.isfinite(rate) and rate >= 1):
            raise ValueError(f"the start rate must be a number of at least 1 a second, got {rate}")
        self.rate = rate
        self.per_window = math.floor(rate)
        self._dynamodb = dynamodb
        self._table = table
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    def acquire(self, budget_seconds: float | None) -> Slot | None:
        """Wait for a slot and take it; None when it would come later than ``budget_seconds``
        from now (None: no limit). Every try is one conditional write, two when it skips."""
        began = self._clock()
        while True:
            now = self._clock()
            window = math.floor(now)
            taken = self._take(window)
            # The slot whose time has come: slot n is due (n - 1) / rate into the window.
            due = math.floor((now - window) * self.rate) + 1
            if taken is not None and taken < due:
                # The window's slots before ``due`` went unused and their time has passed;
                # starting on one of them now would bunch this start with the next ones (and
                # with the next window's first). Skip to the slot due now, or to the next
                # window when this one has no such slot left; the slot taken is forfeited.
                taken = self._skip(window, due - taken)
            if taken is not None:
                # Spread a window's starts over its second.
                at = window + (taken - 1) / self.rate
                if budget_seconds is not None and at - began > budget_seconds:
                    self.release(Slot(window))
                    return None
                if at > now:
                    self._sleep(at - now)
                return Slot(window)
            retry_at = window + 1 + self._jitter(0.0, RETRY_JITTER_SECONDS)
            if budget_seconds is not None and retry_at - began > budget_seconds:
                return None
            self._sleep(retry_at - now)

    def release(self, slot: Slot) -> None:
        """Give back a slot that started nothing, while its window lasts (one write);
        afterwards there is nothing left to give back."""
        if math.floor(self._clock()) != slot.window:
            return
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(slot.window),
                UpdateExpression="ADD starts :minus_one",
                ConditionExpression="starts > :zero",
                ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    def _take(self, window: int) -> int | None:
        """The window's count with this start (1 for its first); None: the window is full."""
        try:
            got = self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(window),
                UpdateExpression="ADD starts :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(starts) OR starts < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self.per_window)},
                    ":expires": {"N": str(window + WINDOW_TTL_SECONDS)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return int(got["Attributes"]["starts"]["N"])

    def _skip(self, window: int, slots: int) -> int | None:
        """Count ``slots`` more starts in the window, all unused; the count after them, or
        None when the window has not that many left."""
        try:
            got = self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(window),
                UpdateExpression="ADD starts :skipped",
                ConditionExpression="starts <= :most",
                ExpressionAttributeValues={
                    ":skipped": {"N": str(slots)},
                    ":most": {"N": str(self.per_window - slots)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return int(got["Attributes"]["starts"]["N"])

    @staticmethod
    def _key(window: int) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"{WINDOW_PREFIX}{window}"}, "sk": {"S": WINDOW_SORT_KEY}}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
