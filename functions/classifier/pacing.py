"""Pace the Standard executions one classifier container starts (STANDARD only).

Under STANDARD the classifier starts executions asynchronously, so the event source mappings'
MaximumConcurrency bounds how fast executions *start*, not how many images call DetectLabels
at once: unpaced, a backlog starts every image within a second or two, they all meet the
DetectLabels quota together, and each throttling retry is a billed state transition. The
queue becomes the rate limiter again when starts are paced to the quota: every container
starts at most its share of ``DETECT_LABELS_RATE`` (``ClassifierSettings.start_share``), so
all the invocations that may run at once together start at most that many executions a second.

A container handles one invocation at a time, so the pacer needs no lock and no shared
store; it lives as long as the container, and an invocation's first start keeps the spacing
after the previous invocation's last one. It is a GCRA with a burst of one: start ``n`` is
allowed at ``t(n-1) + 1/share`` at the earliest, and no earlier than now. A container that has
been idle starts its first execution at once, so a newly scaled-out container may start one
execution early; across a backlog the rate holds.

Libraries checked: pyrate-limiter and limits (both well kept). pyrate-limiter's Limiter
(3.9 API) takes its longest acceptable delay once, when it is built, and does the waiting
itself; here the budget shrinks with the invocation's remaining time, and a record whose slot
does not fit must be handed back untouched, not started late. limits answers "allowed now?"
for a window of requests and never waits, so the spacing would still be ours to compute.
Either would add a package to a function whose cold start is measured; the arithmetic below
is the whole algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable


class StartPacer:
    """At most ``rate`` acquisitions per second, evenly spaced, with a burst of one.

    ``clock`` must be monotonic (seconds); ``sleep`` waits that many seconds. Both are
    injected so tests run exactly and instantly.
    """

    def __init__(
        self, rate: float, *, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"the start rate must be a positive number per second, got {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        # The earliest time the next start may happen; -inf: no start yet in this container.
        self._next = -math.inf

    def wait_seconds(self) -> float:
        """How long an acquisition made now would wait (0 when a slot is free)."""
        return max(0.0, self._next - self._clock())

    def acquire(self, budget_seconds: float | None) -> bool:
        """Wait for the next slot and take it; False, without waiting, when the wait would be
        longer than ``budget_seconds`` (None: no limit)."""
        now = self._clock()
        slot = max(now, self._next)
        if budget_seconds is not None and slot - now > budget_seconds:
            return False
        if slot > now:
            self._sleep(slot - now)
        # From the slot, not from the clock after sleeping: a sleep that overran does not
        # push every later start back, so the long-run rate is exactly ``rate``.
        self._next = slot + self.interval
        return True

    def release(self) -> None:
        """Give back the slot just acquired: nothing was started with it (the execution
        already existed, or StartExecution failed), so it cost DetectLabels nothing."""
        self._next -= self.interval
