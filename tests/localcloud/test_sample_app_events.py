"""EventBridge in the local cloud, driven through the sample application: status-change events
of its state machines, event-pattern rules, schedules to a queue and to a state machine,
Lambda's asynchronous retries, and how executions end (timed out, aborted, failed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud, LocalCloudError

pytestmark = pytest.mark.integration

STATUS_CHANGE = "Step Functions Execution Status Change"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, time_scale=0.01, run_schedules=False) as local_cloud:
        yield local_cloud


def _settle(cloud: LocalCloud, timeout: float = 30) -> None:
    status = cloud.wait_until_idle(timeout=timeout)
    assert status.idle is True, status


def _bodies(cloud: LocalCloud, prefix: str) -> list[Any]:
    items = cloud.client("dynamodb").scan(TableName=cloud.resources["ItemsTable"])["Items"]
    return [json.loads(item["body"]["S"]) for item in items if item["pk"]["S"].startswith(prefix)]


def _has_item(cloud: LocalCloud, pk: str) -> bool:
    return "Item" in cloud.client("dynamodb").get_item(
        TableName=cloud.resources["ItemsTable"], Key={"pk": {"S": pk}}
    )


def _status_events_of(cloud: LocalCloud, name: str) -> list[dict[str, Any]]:
    """What the recorder received from the GateEnded rule (whole events) for one execution."""
    return [
        body
        for body in _bodies(cloud, "recorded-")
        if body.get("detail-type") == STATUS_CHANGE and body["detail"]["name"] == name
    ]


def _start_gate(cloud: LocalCloud, name: str, mode: str) -> str:
    arn: str = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.resources["GateStateMachine"],
        name=name,
        input=json.dumps({"mode": mode}),
    )["executionArn"]
    return arn


def _wait_ended(cloud: LocalCloud, execution_arn: str, timeout: float = 10) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING"
        time.sleep(0.05)
    return dict(described)


def _history_types(cloud: LocalCloud, execution_arn: str) -> list[str]:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=execution_arn)
    return [event["type"] for event in events["events"]]


def test_rules_are_read_back_with_their_bus_and_targets(cloud: LocalCloud) -> None:
    # GIVEN the deployed sample application
    # WHEN its rules are read
    rules = cloud.rules
    # THEN pattern rules, schedules, buses and target kinds come from the template
    assert {
        logical_id: (rule.event_bus_name, rule.enabled, [t.kind for t in rule.targets])
        for logical_id, rule in rules.items()
    } == {
        "CheckerFunctionEveryMinute": ("default", True, ["lambda"]),
        "RecorderFunctionGateEnded": ("default", True, ["lambda"]),
        "RecorderFunctionGateStarted": ("default", True, ["lambda"]),
        "RecorderFunctionTestEvents": ("default", True, ["lambda"]),
        "GateStateMachineNightly": ("default", True, ["states"]),
        "AppOrdersRule": (f"{cloud.stack_name}-app", True, ["sqs"]),
        "QueueSchedule": ("default", False, ["sqs", "sqs"]),
    }
    assert sorted(cloud.schedules) == [
        "CheckerFunctionEveryMinute",
        "GateStateMachineNightly",
        "QueueSchedule",
    ]


def test_failed_execution_sends_running_then_failed_events_to_the_function(
    cloud: LocalCloud,
) -> None:
    # GIVEN rules sending the gate's RUNNING events (transformed) and its ends (whole)
    # WHEN an execution fails
    arn = _start_gate(cloud, "fails-once", "fail")
    _settle(cloud)
    # THEN DescribeExecution carries the error and cause
    described = cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "GateClosed",
        "mode fail closes the gate",
    )
    # AND the function got the RUNNING event through the input transformer
    started = [body for body in _bodies(cloud, "recorded-") if body.get("started") == "fails-once"]
    rule_name = cloud.rules["RecorderFunctionGateStarted"].name
    assert started == [
        {
            "started": "fails-once",
            "input": '{"mode": "fail"}',
            "startDate": started[0]["startDate"],
            "rule": rule_name,
            "note": "execution fails-once is running",
        }
    ]
    # AND the FAILED event whole, in AWS's shape
    [event] = _status_events_of(cloud, "fails-once")
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": cloud.account_id,
        "time": event["time"],
        "region": cloud.region,
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": cloud.resources["GateStateMachine"],
            "name": "fails-once",
            "status": "FAILED",
            "startDate": started[0]["startDate"],
            "stopDate": event["detail"]["stopDate"],
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
    assert event["detail"]["stopDate"] >= event["detail"]["startDate"]


def test_timeout_ends_timed_out_and_no_further_state_runs(cloud: LocalCloud) -> None:
    # GIVEN an execution lingering in a Wait longer than the machine's 2 s TimeoutSeconds
    arn = _start_gate(cloud, "lingers", "linger")
    # WHEN the timeout elapses
    described = _wait_ended(cloud, arn)
    _settle(cloud)
    # THEN it is TIMED_OUT with States.Timeout and a stop date, and never recorded its passage
    assert (described["status"], described["error"], "stopDate" in described) == (
        "TIMED_OUT",
        "States.Timeout",
        True,
    )
    assert _has_item(cloud, "gate-lingers") is False
    assert _history_types(cloud, arn)[-1] == "ExecutionTimedOut"
    # AND the function got the TIMED_OUT event
    [event] = _status_events_of(cloud, "lingers")
    assert (event["detail"]["status"], event["detail"]["error"]) == ("TIMED_OUT", "States.Timeout")


def test_stop_aborts_at_once_and_the_running_task_is_the_last(cloud: LocalCloud) -> None:
    # GIVEN an execution whose Lambda task is running
    sfn = cloud.client("stepfunctions")
    arn = _start_gate(cloud, "stopped", "nap")
    deadline = time.monotonic() + 10
    while "TaskStarted" not in _history_types(cloud, arn):
        assert time.monotonic() < deadline, "the nap task never started"
        time.sleep(0.02)
    # WHEN it is stopped with an error and a cause
    stopped = sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by a test")
    described = sfn.describe_execution(executionArn=arn)
    # THEN it is ABORTED at once, with the error, cause and the stop date StopExecution gave
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Operator",
        "stopped by a test",
    )
    assert described["stopDate"] == stopped["stopDate"]
    # AND once the task has returned, no further state ran
    _settle(cloud)
    assert _has_item(cloud, "gate-stopped") is False
    history = _history_types(cloud, arn)
    assert (history[-1], history.count("TaskStateEntered")) == ("ExecutionAborted", 1)
    [event] = _status_events_of(cloud, "stopped")
    assert (event["detail"]["status"], event["detail"]["error"], event["detail"]["cause"]) == (
        "ABORTED",
        "Operator",
        "stopped by a test",
    )


def test_express_workflows_send_no_status_change_events(cloud: LocalCloud) -> None:
    # GIVEN an EXPRESS state machine (run by the emulator like any other)
    machine = cloud.resources["EchoExpressStateMachine"]
    # WHEN it runs
    arn = cloud.client("stepfunctions").start_execution(
        stateMachineArn=machine, name="echo-1", input="{}"
    )["executionArn"]
    assert _wait_ended(cloud, arn)["status"] == "SUCCEEDED"
    _settle(cloud)
    # THEN no event about it reached the bus
    assert [e for e in cloud.bus_events() if e.event.get("resources") == [arn]] == []


def test_dropped_status_events_never_reach_the_function(cloud: LocalCloud) -> None:
    # GIVEN Step Functions losing every FAILED event
    cloud.status_events.drop = lambda event: event["detail"]["status"] == "FAILED"
    try:
        # WHEN an execution fails
        arn = _start_gate(cloud, "lost-failure", "fail")
        _settle(cloud)
    finally:
        cloud.status_events.drop = None
    # THEN its RUNNING event arrived but its FAILED event was lost, and is listed as dropped
    assert [b for b in _bodies(cloud, "recorded-") if b.get("started") == "lost-failure"] != []
    assert _status_events_of(cloud, "lost-failure") == []
    assert [e["resources"] for e in cloud.status_events.dropped()] == [[arn]]


def test_status_change_events_can_start_switched_off() -> None:
    # GIVEN a cloud created with status-change events off (not started: nothing to deploy)
    # WHEN its switch is read
    # THEN it is off, and can be switched on later
    assert LocalCloud(SAMPLE_TEMPLATE, status_change_events=False).status_events.enabled is False


def test_put_events_reach_matching_rules_through_input_path(cloud: LocalCloud) -> None:
    # GIVEN a rule for sources starting "tests.localcloud" with priority >= 5, InputPath $.detail
    events = cloud.client("events")
    entries = [
        {"Source": "tests.localcloud.put", "DetailType": "t", "Detail": json.dumps(detail)}
        for detail in ({"run": "put-high", "priority": 7}, {"run": "put-low", "priority": 2})
    ]
    entries.append(
        {"Source": "other", "DetailType": "t", "Detail": '{"run": "put-other", "priority": 9}'}
    )
    # WHEN events are put through the emulator's PutEvents
    response = events.put_events(Entries=entries)
    _settle(cloud)
    # THEN each got an id, and only the matching one reached the function, as its detail
    assert response["FailedEntryCount"] == 0
    assert len({entry["EventId"] for entry in response["Entries"]}) == 3
    runs = [b for b in _bodies(cloud, "recorded-") if str(b.get("run", "")).startswith("put-")]
    assert runs == [{"run": "put-high", "priority": 7}]


def test_disabled_rule_delivers_nothing_until_enabled(cloud: LocalCloud) -> None:
    # GIVEN the test-events rule disabled through the API
    events = cloud.client("events")
    rule = cloud.rules["RecorderFunctionTestEvents"]
    events.disable_rule(Name=rule.name)
    try:
        # WHEN a matching event is put
        matching = {"Source": "tests.localcloud", "DetailType": "t"}
        cloud.put_events([{**matching, "Detail": {"run": "while-off", "priority": 5}}])
        _settle(cloud)
    finally:
        events.enable_rule(Name=rule.name)
    # THEN nothing was delivered: the bus saw the event and matched no rule
    assert [b for b in _bodies(cloud, "recorded-") if b.get("run") == "while-off"] == []
    seen = [e for e in cloud.bus_events() if e.event["detail"].get("run") == "while-off"]
    assert [e.matched_rules for e in seen] == [[]]
    # AND once enabled again, the same event is delivered
    cloud.put_events([{**matching, "Detail": {"run": "after-on", "priority": 5}}])
    _settle(cloud)
    assert [b for b in _bodies(cloud, "recorded-") if b.get("run") == "after-on"] == [
        {"run": "after-on", "priority": 5}
    ]


def test_function_error_is_retried_twice_and_the_idle_check_waits(cloud: LocalCloud) -> None:
    # GIVEN an event the recorder refuses every time
    before = len(_bodies(cloud, "attempt-"))
    [result] = cloud.put_events(
        [
            {
                "Source": "tests.localcloud",
                "DetailType": "t",
                "Detail": {"run": "refused", "priority": 5, "fail": True},
            }
        ]
    )
    # WHEN the first attempt has failed and the retry waits (0.6 s at time_scale 0.01)
    deadline = time.monotonic() + 10
    while len(_bodies(cloud, "attempt-")) == before:
        assert time.monotonic() < deadline, "the first attempt never ran"
        time.sleep(0.02)
    waiting = cloud.idle_status()
    # THEN the cloud is not idle: an asynchronous invocation is pending
    assert (waiting.idle, waiting.pending_async_invocations) == (False, 1)
    _settle(cloud)
    # AND it ran three times in all, and its failure is recorded
    assert len(_bodies(cloud, "attempt-")) - before == 3
    [record] = [r for r in cloud.async_invocations() if r.error_type == "RecordingRefused"]
    assert (record.attempts, record.source) == (3, "rule RecorderFunctionTestEvents")
    assert "EventId" in result


def _drain(cloud: LocalCloud) -> list[str]:
    messages = cloud.client("sqs").receive_message(
        QueueUrl=cloud.resources["EventsQueue"], MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    for message in messages.get("Messages", []):
        cloud.client("sqs").delete_message(
            QueueUrl=cloud.resources["EventsQueue"], ReceiptHandle=message["ReceiptHandle"]
        )
    return sorted(message["Body"] for message in messages.get("Messages", []))


def test_custom_bus_rule_sends_transformed_text_to_a_queue(cloud: LocalCloud) -> None:
    # GIVEN a rule on the stack's own bus for orders above 100, writing text to a queue
    bus = cloud.rules["AppOrdersRule"].event_bus_name
    order = {"Source": "shop", "DetailType": "Order Placed"}
    # WHEN a big and a small order are put on that bus, and a big one on the default bus
    cloud.put_events(
        [
            {**order, "EventBusName": bus, "Detail": {"order": {"id": "o-1", "total": 120.5}}},
            {**order, "EventBusName": bus, "Detail": {"order": {"id": "o-2", "total": 80}}},
            {**order, "Detail": {"order": {"id": "o-3", "total": 500}}},
        ]
    )
    _settle(cloud)
    # THEN only the big order on that bus reached the queue, as the template's text
    rule_name = cloud.rules["AppOrdersRule"].name
    assert _drain(cloud) == [f'"order o-1 totals 120.5 on {rule_name}"']


def test_put_events_to_an_unknown_bus_fails_that_entry(cloud: LocalCloud) -> None:
    # GIVEN a bus that does not exist
    # WHEN an event is put on it
    [result] = cloud.put_events(
        [{"Source": "s", "DetailType": "t", "Detail": {}, "EventBusName": "nowhere"}]
    )
    # THEN that entry fails as EventBridge reports it
    assert result == {
        "ErrorCode": "ResourceNotFoundException",
        "ErrorMessage": "Event bus nowhere does not exist.",
    }


def test_schedule_to_a_queue_sends_constant_and_path_inputs(cloud: LocalCloud) -> None:
    # GIVEN a (disabled) schedule with two queue targets: a constant Input and an InputPath
    # WHEN it is fired on demand
    deliveries = cloud.fire_rule("QueueSchedule")
    # THEN each target got its input, in the queue
    assert [(d.target_id, d.delivered, d.payload) for d in deliveries] == [
        ("Constant", True, '{"kind": "constant"}'),
        ("Path", True, '"Scheduled Event"'),
    ]
    assert _drain(cloud) == ['"Scheduled Event"', '{"kind": "constant"}']


def test_schedule_to_a_state_machine_starts_a_uniquely_named_execution(cloud: LocalCloud) -> None:
    # GIVEN SAM's Schedule event on the gate state machine, with a constant input
    # WHEN it is fired twice
    first = cloud.fire_rule("GateStateMachineNightly")
    second = cloud.fire_rule("GateStateMachineNightly")
    _settle(cloud)
    # THEN two executions with different generated names passed the gate
    arns = [first[0].detail, second[0].detail]
    names = [arn.rsplit(":", 1)[1] for arn in arns]
    assert len(set(names)) == 2
    sfn = cloud.client("stepfunctions")
    assert [sfn.describe_execution(executionArn=arn)["status"] for arn in arns] == [
        "SUCCEEDED",
        "SUCCEEDED",
    ]
    assert [_has_item(cloud, f"gate-{name}") for name in names] == [True, True]
    assert [d.payload for d in first + second] == ['{"mode": "pass"}', '{"mode": "pass"}']


def test_fire_schedule_needs_a_single_function_target(cloud: LocalCloud) -> None:
    # GIVEN a schedule whose targets are queues
    # WHEN it is fired as a function's schedule
    # THEN the caller is sent to fire_rule
    with pytest.raises(LocalCloudError, match="QueueSchedule does not target exactly one"):
        cloud.fire_schedule("QueueSchedule")


def test_injected_timeout_ends_timed_out_after_the_current_state(cloud: LocalCloud) -> None:
    # GIVEN an execution whose Lambda task (a 0.6 s nap) is running
    arn = _start_gate(cloud, "cut-short", "nap")
    deadline = time.monotonic() + 10
    while "TaskStarted" not in _history_types(cloud, arn):
        assert time.monotonic() < deadline, "the nap never started"
        time.sleep(0.02)

    # WHEN its timeout is made to elapse now
    assert cloud.time_out_execution(arn) is True
    described = _wait_ended(cloud, arn)
    _settle(cloud)

    # THEN it ends TIMED_OUT with States.Timeout, never reaching the state after the nap
    assert (described["status"], described["error"]) == ("TIMED_OUT", "States.Timeout")
    assert _has_item(cloud, "gate-cut-short") is False
    [event] = _status_events_of(cloud, "cut-short")
    assert event["detail"]["status"] == "TIMED_OUT"
    # AND an execution that already ended cannot be timed out
    assert cloud.time_out_execution(arn) is False
