"""Fault injection on Express: a running synchronous execution found by input and timed out."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.localcloud.conftest import TEMPLATES
from tweetlens.localcloud import LocalCloud

pytestmark = pytest.mark.integration

TEMPLATE = TEMPLATES / "express_sync.yaml"


def _start(cloud: LocalCloud, mode: str) -> dict[str, Any]:
    response: dict[str, Any] = cloud.client("stepfunctions").start_sync_execution(
        stateMachineArn=cloud.resources["SyncStateMachine"],
        name="held",
        input=json.dumps({"mode": mode}),
    )
    return response


def test_a_running_express_execution_is_found_by_input_and_timed_out() -> None:
    # GIVEN an EXPRESS machine on the full 300 s limit, and an execution that waits an hour
    with LocalCloud(TEMPLATE, run_schedules=False, run_pollers=False) as full_limit:
        answers: list[dict[str, Any]] = []
        waiter = threading.Thread(target=lambda: answers.append(_start(full_limit, "linger")))
        started = time.monotonic()
        waiter.start()
        deadline = started + 10
        running: dict[str, Any] = {}
        while not running and time.monotonic() < deadline:
            running = full_limit.express.running_inputs()
            time.sleep(0.01)

        # WHEN the fault hook finds it by its input and makes its timeout elapse now
        [(arn, execution_input)] = running.items()
        timed_out = full_limit.time_out_execution(arn)
        waiter.join(timeout=10)

        # THEN the waiting caller gets TIMED_OUT / States.Timeout long before the limit,
        # and the execution is no longer running
        assert (execution_input, timed_out) == ({"mode": "linger"}, True)
        [answer] = answers
        assert (answer["status"], answer["error"]) == ("TIMED_OUT", "States.Timeout")
        assert answer["executionArn"] == arn
        assert time.monotonic() - started < 10
        assert full_limit.express.running_inputs() == {}
