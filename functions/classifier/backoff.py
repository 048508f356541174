"""How soon SQS delivers again a record that failed transiently under EXPRESS.

Under EXPRESS a route queue's visibility timeout is 2160 s (six times the classifier's 360 s
timeout, as Lambda recommends for SQS event sources, so that no record becomes visible while
its invocation still runs). A record reported as a batch item failure would therefore wait 36
minutes, whereas what failed it (DetectLabels throttled after the workflow's own retries,
StartSyncExecution or DynamoDB throttled) usually clears within seconds. The classifier sets
such a record's visibility to a backoff instead: at most ``BASE_SECONDS`` after its first
receive, ``GROWTH`` times that for each receive since, never more than ``CAP_SECONDS``, with
full jitter (a whole number of seconds from 0 to that ceiling), so records that failed
together do not all come back in the same second.

The redrive policy's maxReceiveCount (5) still moves a message that keeps failing to its
route's dead-letter queue, where it can be redriven: after the backoffs of its five receives,
at most 10 + 40 + 160 + 640 + 900 s (about 15 minutes on average with the jitter) plus the
five executions, instead of three hours. The growth is steep on purpose: the first redelivery
comes quickly (a throttled second is over), later ones give a real outage time to pass.
"""

from __future__ import annotations

from collections.abc import Callable

# Seconds after the first receive, at most.
BASE_SECONDS = 10
# Each further receive multiplies the ceiling by this.
GROWTH = 4
# Never longer than this (SQS allows up to 12 hours; the queue's own timeout is 2160 s).
CAP_SECONDS = 900

# ``random.randint``'s contract: a whole number from ``low`` to ``high``, both included.
type Jitter = Callable[[int, int], int]


def ceiling_seconds(receive_count: int) -> int:
    """The longest backoff after a record's ``receive_count``-th receive (1 for the first)."""
    exponent = max(0, receive_count - 1)
    ceiling = BASE_SECONDS
    for _ in range(exponent):
        ceiling *= GROWTH
        if ceiling >= CAP_SECONDS:
            return CAP_SECONDS
    return ceiling


def redelivery_delay(receive_count: int, jitter: Jitter) -> int:
    """Seconds until SQS may deliver the record again: full jitter up to the ceiling."""
    ceiling = ceiling_seconds(receive_count)
    delay = jitter(0, ceiling)
    # A jitter outside its bounds must not make SQS refuse the call (0 to 43,200 s).
    return min(max(delay, 0), ceiling)
