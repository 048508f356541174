"""A count of work started anywhere in the local cloud, for trustworthy idle checks.

An idle check reads many queues one after the other; work handed from one to another while
they are read (an event becoming an invocation) could be missed by both reads. Every place
where work starts (an invocation, an event put on a bus, a queued asynchronous invocation,
a message sent to a queue, an execution changing status) ticks this counter, and a check
that saw it move while reading does not report idle.
"""

from __future__ import annotations

import threading


class Activity:
    """A thread-safe, ever-increasing count of work started."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def started(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        with self._lock:
            return self._value
