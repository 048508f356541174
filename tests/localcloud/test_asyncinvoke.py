"""Asynchronous invocation with Lambda's retries (scaled delays). No network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tweetlens.localcloud.asyncinvoke import AsyncInvoker
from tweetlens.localcloud.models import InvocationResult, LambdaError

DELAYS = (0.2, 0.4)


class _Function:
    """Fails its first ``failures`` invocations, then succeeds; records when it ran."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []

    def __call__(self, function_name: str, event: Any) -> InvocationResult:
        self.calls.append(time.monotonic())
        failed = len(self.calls) <= self.failures
        return InvocationResult(
            function_name=function_name,
            request_id=f"req-{len(self.calls)}",
            payload_json=None if failed else "{}",
            error=LambdaError(error_type="Boom", error_message="no") if failed else None,
            report="REPORT",
            logs="",
            duration_ms=1.0,
            cold_start=False,
            started_at=0.0,
            ended_at=0.0,
        )


@pytest.fixture
def make_invoker() -> Iterator[Any]:
    invokers: list[AsyncInvoker] = []

    def make(function: _Function) -> AsyncInvoker:
        invoker = AsyncInvoker(function, retry_delays=DELAYS)
        invoker.start()
        invokers.append(invoker)
        return invoker

    yield make
    for invoker in invokers:
        invoker.stop()


def _wait_idle(invoker: AsyncInvoker, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while invoker.in_flight():
        assert time.monotonic() < deadline, "asynchronous invocations did not settle"
        time.sleep(0.01)


def test_function_error_is_retried_twice_after_the_delays(make_invoker: Any) -> None:
    # GIVEN a function that fails twice, then succeeds
    function = _Function(failures=2)
    invoker = make_invoker(function)
    # WHEN one event is submitted and the invoker settles
    invoker.submit("fn", {"a": 1}, source="rule R")
    _wait_idle(invoker)
    # THEN it ran three times, the retries waiting the (scaled) delays, and succeeded
    [record] = invoker.history()
    assert (record.attempts, record.succeeded, record.request_ids) == (
        3,
        True,
        ["req-1", "req-2", "req-3"],
    )
    first, second, third = function.calls
    assert (second - first >= DELAYS[0], third - second >= DELAYS[1]) == (True, True)


def test_event_failing_every_attempt_is_recorded_and_in_flight_until_then(
    make_invoker: Any,
) -> None:
    # GIVEN a function that always fails
    invoker = make_invoker(_Function(failures=10))
    # WHEN an event is submitted
    invoker.submit("fn", {}, source="rule R")
    time.sleep(0.05)
    # THEN it counts as in flight while waiting for its retries
    assert invoker.in_flight() == 1
    _wait_idle(invoker)
    # AND after three attempts it is recorded as failed with the last error
    [record] = invoker.history()
    assert (record.attempts, record.error_type, record.error_message, record.source) == (
        3,
        "Boom",
        "no",
        "rule R",
    )


def test_stop_drops_waiting_retries(make_invoker: Any) -> None:
    # GIVEN an event waiting for its first retry
    invoker = make_invoker(_Function(failures=10))
    invoker.submit("fn", {}, source="rule R")
    time.sleep(0.05)
    # WHEN the invoker stops
    invoker.stop()
    # THEN nothing is in flight and nothing more runs
    assert (invoker.in_flight(), invoker.history()) == (0, [])
