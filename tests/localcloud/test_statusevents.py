"""Step Functions status-change events: their shape, and the switches that lose them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from tweetlens.localcloud.activity import Activity
from tweetlens.localcloud.statusevents import (
    StatusChangeEmitter,
    drop_fraction,
    status_change_event,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Gate"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Gate:run-1"
STARTED = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=UTC)
STOPPED = datetime(2026, 11, 23, 12, 0, 1, 500000, tzinfo=UTC)


def test_failed_execution_event_has_the_shape_aws_sends() -> None:
    # GIVEN a failed execution
    # WHEN its status-change event is built
    event = status_change_event(
        execution_arn=EXECUTION,
        state_machine_arn=MACHINE,
        name="run-1",
        status="FAILED",
        start_date=STARTED,
        stop_date=STOPPED,
        execution_input='{"mode": "fail"}',
        output=None,
        error="GateClosed",
        cause="mode fail closes the gate",
        account="123456789012",
        region="us-east-1",
        at=STOPPED,
    )
    # THEN it is Step Functions' event, dates in epoch milliseconds, redrivable
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-23T12:00:01Z",
        "region": "us-east-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": MACHINE,
            "name": "run-1",
            "status": "FAILED",
            "startDate": 1795435200250,
            "stopDate": 1795435201500,
            "input": '{"mode": "fail"}',
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": "GateClosed",
            "cause": "mode fail closes the gate",
            "stateMachineVersionArn": None,
            "stateMachineAliasArn": None,
            "redriveCount": 0,
            "redriveDate": None,
            "redriveStatus": "REDRIVABLE",
            "redriveStatusReason": None,
        },
    }


def _execution(machine: str = MACHINE, declared: str = "STANDARD") -> Any:
    return SimpleNamespace(
        exec_arn=EXECUTION,
        state_machine_arn=machine,
        state_machine=SimpleNamespace(type=declared),
        name="run-1",
        start_date=STARTED,
        stop_date=STOPPED,
        execution_input="{}",
        output={"ok": True},
        error=None,
        cause=None,
        account_id="123456789012",
        region_name="us-east-1",
    )


def _emitter(types: dict[str, str] | None = None) -> tuple[StatusChangeEmitter, list[Any]]:
    put: list[Any] = []
    emitter = StatusChangeEmitter(put.append, declared_types={}, activity=Activity())
    emitter.declare_types(types or {MACHINE: "STANDARD"})
    return emitter, put


def test_succeeded_event_carries_the_output_and_running_has_no_stop_date() -> None:
    # GIVEN a STANDARD execution that starts and succeeds
    emitter, put = _emitter()
    # WHEN both status changes are reported
    emitter(_execution(), "RUNNING")
    emitter(_execution(), "SUCCEEDED")
    # THEN RUNNING has no stop date or output; SUCCEEDED has both, and is not redrivable
    running, succeeded = (event["detail"] for event in put)
    assert (running["status"], running["stopDate"], running["output"]) == ("RUNNING", None, None)
    assert running["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
    assert (succeeded["output"], succeeded["outputDetails"]) == ('{"ok":true}', {"included": True})
    assert (succeeded["stopDate"], succeeded["redriveStatus"]) == (1795435201500, "NOT_REDRIVABLE")


@pytest.mark.parametrize(
    ("types", "declared", "expected"),
    [
        ({MACHINE: "EXPRESS"}, "STANDARD", 0),
        ({}, "EXPRESS", 0),
        ({}, "STANDARD", 1),
    ],
)
def test_only_standard_workflows_emit(types: dict[str, str], declared: str, expected: int) -> None:
    # GIVEN a machine declared EXPRESS by the template, or created EXPRESS through the API
    emitter, put = _emitter(types or {"other": "STANDARD"})
    # WHEN one of its executions starts
    emitter(_execution(declared=declared), "RUNNING")
    # THEN only a STANDARD one is reported
    assert len(put) == expected


def test_disabled_or_dropped_events_never_reach_the_bus() -> None:
    # GIVEN an emitter that drops FAILED events
    emitter, put = _emitter()
    emitter.drop = lambda event: event["detail"]["status"] == "FAILED"
    # WHEN an execution starts and fails, then events are switched off and another starts
    emitter(_execution(), "RUNNING")
    emitter(_execution(), "FAILED")
    emitter.enabled = False
    emitter(_execution(), "RUNNING")
    # THEN only the first RUNNING was put; the FAILED one is kept as dropped
    assert [event["detail"]["status"] for event in put] == ["RUNNING"]
    assert [event["detail"]["status"] for event in emitter.dropped()] == ["FAILED"]


def test_drop_fraction_is_reproducible() -> None:
    # GIVEN two filters with the same seed
    first, second = drop_fraction(0.5, seed=7), drop_fraction(0.5, seed=7)
    # WHEN each judges 200 events
    verdicts = [first({}) for _ in range(200)]
    # THEN they agree, and drop about half
    assert verdicts == [second({}) for _ in range(200)]
    assert 70 < sum(verdicts) < 130
    assert not any(drop_fraction(0.0)({}) for _ in range(50))
    assert all(drop_fraction(1.0)({}) for _ in range(50))
