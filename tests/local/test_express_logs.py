"""Express executions rebuilt from their execution logs (``tweetlens.trace.express_logs``)."""

from __future__ import annotations

import datetime

import pytest

from tweetlens.trace import build_trace
from tweetlens.trace.express_logs import ExpressHistoryNotFound, from_records, state_machine_of

ARN = "arn:aws:states:us-east-1:123456789012:express:Classify:abc:1f2e-77"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Classify"
DEFINITION = {
    "StartAt": "Fetch",
    "States": {
        "Fetch": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}
    },
}


def record(
    event_id: int, event_type: str, details: dict[str, object], arn: str = ARN
) -> dict[str, object]:
    return {
        "id": str(event_id),
        "type": event_type,
        "details": details,
        "previous_event_id": str(event_id - 1),
        "event_timestamp": str(1_764_646_531_000 + event_id * 100),
        "execution_arn": arn,
        "redrive_count": "0",
    }


RECORDS = [
    record(3, "TaskStateEntered", {"name": "Fetch", "input": "{}"}),
    record(1, "ExecutionStarted", {"input": '{"mode": "x"}', "roleArn": "arn:aws:iam::1:role/r"}),
    record(4, "TaskFailed", {"error": "ImageNotFound", "cause": "404", "resource": "invoke"}),
    record(5, "ExecutionFailed", {"error": "ImageNotFound", "cause": "404"}),
    record(1, "ExecutionStarted", {"input": "{}"}, arn=ARN + "-other"),
]


def test_records_become_the_history_of_their_execution() -> None:
    # GIVEN one execution's log records, out of order, beside another execution's
    # WHEN its history is rebuilt
    history = from_records(ARN, RECORDS)

    # THEN it holds only its own events, in order, as GetExecutionHistory gives them
    assert (history.name, history.status, history.input) == ("abc", "FAILED", '{"mode": "x"}')
    assert history.state_machine_arn == MACHINE == state_machine_of(ARN)
    assert [(e["id"], e["type"]) for e in history.events] == [
        (1, "ExecutionStarted"),
        (3, "TaskStateEntered"),
        (4, "TaskFailed"),
        (5, "ExecutionFailed"),
    ]
    assert history.events[1]["stateEnteredEventDetails"] == {"name": "Fetch", "input": "{}"}
    assert history.events[2]["taskFailedEventDetails"]["error"] == "ImageNotFound"
    assert history.events[0]["timestamp"] == datetime.datetime(
        2025, 12, 2, 3, 35, 31, 100_000, tzinfo=datetime.UTC
    )
    # AND the trace drawing reads it like any history
    trace = build_trace(DEFINITION, history.events)
    assert (trace.status, trace.failed_state) == ("FAILED", "Fetch")


def test_execution_without_records_is_named() -> None:
    # GIVEN records of other executions only (logging below ALL keeps no started event)
    # WHEN the history is asked for THEN the error says what Express tracing needs
    with pytest.raises(ExpressHistoryNotFound) as raised:
        from_records(ARN + "-missing", RECORDS[:1])
    assert str(raised.value) == (
        f"no execution log record of {ARN}-missing: Express executions are drawn from their "
        "logs, which need ExpressLogLevel=ALL"
    )
