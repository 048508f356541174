"""``StartSyncExecution`` on the local cloud: Express semantics, the answer's shape, the logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.localcloud.conftest import TEMPLATES
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.express import log_events
from tweetlens.localcloud.models import StateMachineLogging

pytestmark = pytest.mark.integration

TEMPLATE = TEMPLATES / "express_sync.yaml"
# The Express limit (300 s) x this scale: a lingering execution times out after 1.5 s.
SCALE = 0.005
LOG_GROUP = "/aws/vendedlogs/states/express-sync"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        TEMPLATE, run_schedules=False, run_pollers=False, execution_timeout_scale=SCALE
    ) as local_cloud:
        yield local_cloud


def _start(cloud: LocalCloud, mode: str, name: str = "same-name") -> dict[str, Any]:
    response: dict[str, Any] = cloud.client("stepfunctions").start_sync_execution(
        stateMachineArn=cloud.resources["SyncStateMachine"],
        name=name,
        input=json.dumps({"mode": mode}),
    )
    return response


def _log_records(cloud: LocalCloud, execution_arn: str) -> list[dict[str, Any]]:
    logs = cloud.client("logs")
    records: list[dict[str, Any]] = []
    for stream in logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"])
        for event in events["events"]:
            record = json.loads(event["message"])
            if record["execution_arn"] == execution_arn:
                records.append(record)
    return records


def test_succeeded_answer_has_output_and_billing(cloud: LocalCloud) -> None:
    # GIVEN the EXPRESS machine WHEN an execution that echoes is started synchronously
    response = _start(cloud, "echo")

    # THEN the caller gets AWS's synchronous answer: status, output and billing details
    assert response["status"] == "SUCCEEDED"
    assert json.loads(response["output"]) == {"mode": "echo", "result": {"echoed": True}}
    assert "error" not in response
    assert response["billingDetails"]["billedMemoryUsedInMB"] == 64
    billed = response["billingDetails"]["billedDurationInMilliseconds"]
    assert billed >= 100
    assert billed % 100 == 0
    machine = cloud.resources["SyncStateMachine"]
    prefix = machine.replace(":stateMachine:", ":express:") + ":same-name:"
    assert response["executionArn"].startswith(prefix)


def test_same_name_starts_a_new_execution_each_time(cloud: LocalCloud) -> None:
    # GIVEN / WHEN two synchronous executions with the same name and input
    first = _start(cloud, "echo")
    second = _start(cloud, "echo")

    # THEN both ran: Express has no name idempotency
    assert (first["status"], second["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert first["executionArn"] != second["executionArn"]


def test_failed_answer_has_error_and_cause(cloud: LocalCloud) -> None:
    # GIVEN / WHEN an execution that reaches a Fail state
    response = _start(cloud, "fail")

    # THEN the call itself succeeds and the answer says FAILED with the error and cause
    assert (response["status"], response["error"], response["cause"]) == (
        "FAILED",
        "Refused",
        "the input asked for it",
    )
    assert "output" not in response


def test_express_limit_times_out_a_lingering_execution(cloud: LocalCloud) -> None:
    # GIVEN an execution waiting an hour, in a machine that declares no TimeoutSeconds
    started = time.monotonic()

    # WHEN it is started synchronously
    response = _start(cloud, "linger")

    # THEN the Express limit (300 s x 0.005) ends it TIMED_OUT
    assert (response["status"], response["error"]) == ("TIMED_OUT", "States.Timeout")
    assert 1.5 <= time.monotonic() - started < 10


def test_express_executions_are_not_described_or_listed(cloud: LocalCloud) -> None:
    # GIVEN an Express execution that ended
    response = _start(cloud, "echo")
    sfn = cloud.client("stepfunctions")

    # WHEN it is described THEN it is refused: DescribeExecution serves no Express ARN
    with pytest.raises(ClientError) as raised:
        sfn.describe_execution(executionArn=response["executionArn"])
    assert raised.value.response["Error"]["Code"] == "InvalidArn"
    # AND listing the machine's executions is refused as AWS refuses it (an empty list would
    # read as "nothing ran"), while a STANDARD machine's are listed
    with pytest.raises(ClientError) as refused:
        sfn.list_executions(stateMachineArn=cloud.resources["SyncStateMachine"])
    error = refused.value.response
    assert error["Error"]["Code"] == "StateMachineTypeNotSupported"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    standard = sfn.list_executions(stateMachineArn=cloud.resources["StandardStateMachine"])
    assert standard["executions"] == []


def test_standard_machine_refuses_sync_execution(cloud: LocalCloud) -> None:
    # GIVEN a STANDARD machine WHEN StartSyncExecution is called on it
    with pytest.raises(ClientError) as raised:
        cloud.client("stepfunctions").start_sync_execution(
            stateMachineArn=cloud.resources["StandardStateMachine"], input="{}"
        )

    # THEN it is refused as AWS refuses it
    assert raised.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


def test_machines_are_described_with_their_declared_type_and_logging(cloud: LocalCloud) -> None:
    # GIVEN an EXPRESS machine logging ALL to its group, and a STANDARD one declaring no logging
    sfn = cloud.client("stepfunctions")

    # WHEN both are described
    express = sfn.describe_state_machine(stateMachineArn=cloud.resources["SyncStateMachine"])
    standard = sfn.describe_state_machine(stateMachineArn=cloud.resources["StandardStateMachine"])

    # THEN each says its declared type and logging, as AWS does (moto's own says STANDARD, OFF)
    group_arn = express["loggingConfiguration"]["destinations"][0]["cloudWatchLogsLogGroup"]
    assert (express["type"], standard["type"]) == ("EXPRESS", "STANDARD")
    assert (
        express["loggingConfiguration"]["level"],
        express["loggingConfiguration"]["includeExecutionData"],
    ) == ("ALL", True)
    # (AWS's LogGroup Arn ends in ":*", moto's GetAtt does not: either names the group.)
    assert group_arn["logGroupArn"].split(":log-group:", 1)[1].removesuffix(":*") == LOG_GROUP
    assert standard["loggingConfiguration"] == {"level": "OFF", "includeExecutionData": False}


def test_level_all_logs_every_event_in_express_format(cloud: LocalCloud) -> None:
    # GIVEN the machine logs at ALL with execution data WHEN an execution fails
    response = _start(cloud, "fail")

    # THEN its log group holds every history event in AWS's Express log format
    records = _log_records(cloud, response["executionArn"])
    assert [r["type"] for r in records] == [
        "ExecutionStarted",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "FailStateEntered",
        "ExecutionFailed",
    ]
    assert [r["id"] for r in records] == ["1", "2", "3", "4", "5"]
    # The first state entered follows event 0, as in AWS's histories.
    assert [r["previous_event_id"] for r in records] == ["0", "0", "2", "3", "4"]
    assert json.loads(records[0]["details"]["input"]) == {"mode": "fail"}
    assert records[-1]["details"] == {"error": "Refused", "cause": "the input asked for it"}
    assert all(int(r["event_timestamp"]) > 0 for r in records)
    assert {r["redrive_count"] for r in records} == {"0"}


HISTORY = [
    {
        "id": 1,
        "type": "ExecutionStarted",
        "previousEventId": 0,
        "timestamp": "2026-12-02T03:35:31.677Z",
        "executionStartedEventDetails": {"input": "{}", "roleArn": "arn:aws:iam::1:role/r"},
    },
    {
        "id": 2,
        "type": "TaskFailed",
        "previousEventId": 1,
        "timestamp": "2026-12-02T03:35:31.700Z",
        "taskFailedEventDetails": {"error": "E", "cause": "C", "resource": "r"},
    },
    {
        "id": 3,
        "type": "ExecutionFailed",
        "previousEventId": 2,
        "timestamp": "2026-12-02T03:35:31.800Z",
        "executionFailedEventDetails": {"error": "E", "cause": "C"},
    },
]


@pytest.mark.parametrize(
    ("level", "types"),
    [
        ("ALL", ["ExecutionStarted", "TaskFailed", "ExecutionFailed"]),
        ("ERROR", ["TaskFailed", "ExecutionFailed"]),
        ("FATAL", ["ExecutionFailed"]),
        ("OFF", []),
    ],
)
def test_log_level_chooses_events(level: str, types: list[str]) -> None:
    # GIVEN a failed execution's history WHEN it is logged at ``level`` without execution data
    logging = StateMachineLogging(level=level, include_execution_data=False)
    records = log_events(logging, "arn:x", HISTORY)

    # THEN only that level's events are logged, and no input or output
    messages = [json.loads(r["message"]) for r in records]
    assert [m["type"] for m in messages] == types
    assert all("input" not in m["details"] for m in messages)
    assert [r["timestamp"] for r in records] == [int(m["event_timestamp"]) for m in messages]
