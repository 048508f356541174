"""Asynchronous Lambda invocation (how EventBridge invokes functions), with Lambda's retries.

Lambda queues the event and returns at once; when the function returns an error (its own,
a timeout, a runtime failure) it tries twice more, one minute after the first attempt and
two minutes after the second. Those waits are multiplied by the cloud's ``time_scale``.
An event that fails every attempt is discarded (no ``EventInvokeConfig`` destination is
emulated): it is logged as an error and kept in ``history()``.

Throttles (reserved concurrency 0) are retried on the same schedule rather than for Lambda's
six hours, so a test ends in bounded time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from tweetlens.localcloud.models import AsyncInvocationRecord, InvocationResult

logger = Logger(service="localcloud")

RETRY_DELAYS_SECONDS = (60.0, 120.0)
DEFAULT_WORKERS = 4
HISTORY_LIMIT = 10_000

Invoker = Callable[[str, Any], InvocationResult]


@dataclass(order=True)
class _Job:
    due: float
    sequence: int
    function_name: str = field(compare=False)
    event: Any = field(compare=False)
    source: str = field(compare=False)
    attempts: int = field(default=0, compare=False)
    request_ids: list[str] = field(default_factory=list, compare=False)


class AsyncInvoker:
    """A queue of asynchronous invocations run by a few worker threads."""

    def __init__(
        self,
        invoke: Invoker,
        *,
        time_scale: float = 1.0,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
        workers: int = DEFAULT_WORKERS,
        on_submit: Callable[[], None] = lambda: None,
    ) -> None:
        self._invoke = invoke
        self._delays = tuple(delay * time_scale for delay in retry_delays)
        self._on_submit = on_submit
        self._jobs: list[_Job] = []
        self._sequence = itertools.count()
        self._running = 0
        self._condition = threading.Condition()
        self._stopped = False
        self._history: deque[AsyncInvocationRecord] = deque(maxlen=HISTORY_LIMIT)
        self._threads = [
            threading.Thread(target=self._work, name=f"async-invoke-{index}", daemon=True)
            for index in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; queued and retrying invocations are dropped (and counted)."""
        with self._condition:
            self._stopped = True
            dropped = len(self._jobs)
            self._jobs.clear()
            self._condition.notify_all()
        if dropped:
            logger.warning("Asynchronous invocations dropped at shutdown", count=dropped)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def submit(self, function_name: str, event: Any, *, source: str) -> None:
        """Queue an invocation; returns at once, as Lambda's ``Event`` invocation does."""
        self._on_submit()
        with self._condition:
            if self._stopped:
                logger.warning("Invocation after shutdown dropped", function_name=function_name)
                return
            job = _Job(time.monotonic(), next(self._sequence), function_name, event, source)
            heapq.heappush(self._jobs, job)
            self._condition.notify()

    def in_flight(self) -> int:
        """Invocations queued, running, or waiting for a retry."""
        with self._condition:
            return len(self._jobs) + self._running

    def history(self) -> list[AsyncInvocationRecord]:
        """Every finished asynchronous invocation, oldest first."""
        with self._condition:
            return list(self._history)

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            self._settle(job, self._attempt(job))

    def _attempt(self, job: _Job) -> tuple[str, str] | None:
        """Run one attempt; the error type and message when it failed."""
        try:
            result = self._invoke(job.function_name, job.event)
        except Exception as exc:
            logger.exception("Asynchronous invocation broke", function_name=job.function_name)
            return type(exc).__name__, str(exc)
        job.request_ids.append(result.request_id)
        if result.error is None:
            return None
        return result.error.error_type, result.error.error_message

    def _next_job(self) -> _Job | None:
        with self._condition:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                if self._jobs and self._jobs[0].due <= now:
                    self._running += 1
                    return heapq.heappop(self._jobs)
                wait = self._jobs[0].due - now if self._jobs else None
                self._condition.wait(wait)

    def _settle(self, job: _Job, error: tuple[str, str] | None) -> None:
        job.attempts += 1
        with self._condition:
            self._running -= 1
            if error is not None and job.attempts <= len(self._delays) and not self._stopped:
                # Queued under the lock that ends this attempt: in_flight() never sees neither.
                job.due = time.monotonic() + self._delays[job.attempts - 1]
                heapq.heappush(self._jobs, job)
                self._condition.notify()
                logger.info(
                    "Asynchronous invocation failed, will retry",
                    function_name=job.function_name,
                    attempt=job.attempts,
                    error_type=error[0],
                )
                return
            record = AsyncInvocationRecord(
                function_name=job.function_name,
                source=job.source,
                attempts=job.attempts,
                error_type=None if error is None else error[0],
                error_message=None if error is None else error[1],
                request_ids=list(job.request_ids),
            )
            self._history.append(record)
        if error is not None:
            logger.error(
                "Asynchronous invocation failed after all attempts; event discarded",
                function_name=job.function_name,
                source=job.source,
                attempts=job.attempts,
                error_type=error[0],
                error_message=error[1],
            )
