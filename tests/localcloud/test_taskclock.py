"""``taskclock``: a Step Functions task's TimeoutSeconds leaves out the wait for a local
Lambda worker (Lambda would scale out), and counts everything else."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.localcloud.conftest import TEMPLATES
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.taskclock import TaskClock

TEMPLATE = TEMPLATES / "queued_task.yaml"


def _set_later(clock: TaskClock, seconds: float) -> None:
    threading.Timer(seconds, clock.set).start()


def test_a_clock_times_out_when_nothing_paused_it() -> None:
    # GIVEN a task that ends 0.6 s in, never paused
    clock = TaskClock()
    _set_later(clock, 0.6)

    # WHEN its end is awaited for 0.2 s
    ended = clock.wait(0.2)

    # THEN it timed out
    assert ended is False


def test_time_spent_paused_does_not_count_against_the_timeout() -> None:
    # GIVEN a task paused for its first 0.8 s (waiting for a worker) that ends 0.6 s in
    clock = TaskClock()
    _set_later(clock, 0.6)
    pause = clock.paused()
    pause.__enter__()
    threading.Timer(0.8, lambda: pause.__exit__(None, None, None)).start()

    # WHEN its end is awaited for 0.2 s
    ended = clock.wait(0.2)

    # THEN it ended in time: only 0 s of its 0.2 s had run when it ended
    assert ended is True
    assert clock.paused_seconds() >= 0.5


def test_pauses_nest_and_add_up() -> None:
    # GIVEN a clock paused twice over, then once
    clock = TaskClock()
    with clock.paused():
        with clock.paused():
            time.sleep(0.1)
        time.sleep(0.1)
    with clock.paused():
        time.sleep(0.1)

    # WHEN / THEN the paused time is the three sleeps, not counted twice
    assert 0.3 <= clock.paused_seconds() < 0.6


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        TEMPLATE, run_schedules=False, run_pollers=False, function_concurrency=1
    ) as local_cloud:
        assert local_cloud.worker_cap("SleeperFunction") == 1
        local_cloud.warm_up("SleeperFunction", 1)
        yield local_cloud


def _run_together(cloud: LocalCloud, seconds: list[float]) -> list[dict[str, str]]:
    sfn = cloud.client("stepfunctions")
    arns = [
        sfn.start_execution(
            stateMachineArn=cloud.resources["NapStateMachine"],
            name=f"nap-{time.monotonic_ns()}-{n}",
            input=json.dumps({"seconds": nap}),
        )["executionArn"]
        for n, nap in enumerate(seconds)
    ]
    assert cloud.wait_until_idle(timeout=60).idle
    described = [sfn.describe_execution(executionArn=arn) for arn in arns]
    return [
        {"status": execution["status"], "error": execution.get("error", "")}
        for execution in described
    ]


@pytest.mark.integration
def test_executions_queued_for_the_one_worker_do_not_time_out(cloud: LocalCloud) -> None:
    # GIVEN four executions started together, each napping 0.8 s on the function's one
    # worker, under a 2 s task timeout: the last waits about 2.4 s for the worker
    # WHEN they run
    outcomes = _run_together(cloud, [0.8, 0.8, 0.8, 0.8])

    # THEN all four succeed, as in AWS where each would have had its own execution environment
    assert outcomes == [{"status": "SUCCEEDED", "error": ""}] * 4


@pytest.mark.integration
def test_a_handler_running_past_the_task_timeout_still_times_out(cloud: LocalCloud) -> None:
    # GIVEN one execution whose nap (3 s) outlasts its task's 2 s timeout, nothing queued
    # WHEN it runs
    outcomes = _run_together(cloud, [3.0])

    # THEN the task timed out, failing the execution
    assert outcomes == [{"status": "FAILED", "error": "States.Timeout"}]
