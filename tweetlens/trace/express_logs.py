"""Express executions read back from their CloudWatch execution logs.

Step Functions keeps no history of an Express execution (``DescribeExecution`` and
``GetExecutionHistory`` refuse its ARN); with logging at ``ALL`` its log group holds every
history event, one JSON record each (``id``, ``type``, ``details``, ``previous_event_id``,
``event_timestamp`` in ms, ``execution_arn``). This module finds an execution's records, in AWS
or the local cloud alike, and turns them back into ``GetExecutionHistory`` events for
``tweetlens.trace`` to draw.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tweetlens.stack import DeployedStack, StackNotFound

EXPRESS_MARKER = ":express:"
# Step Functions log groups live under this prefix (a smaller resource policy in AWS).
VENDED_STATES_LOG_GROUPS = "/aws/vendedlogs/states/"
ENDED = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


class ExpressHistoryNotFound(StackNotFound):
    """No log record of the execution: logging below ALL, another log group, or expired."""


@dataclass(frozen=True)
class ExpressHistory:
    execution_arn: str
    state_machine_arn: str
    name: str
    status: str
    input: str
    events: list[dict[str, Any]]


def is_express(execution_arn: str) -> bool:
    return EXPRESS_MARKER in execution_arn


def state_machine_of(execution_arn: str) -> str:
    """``arn:…:express:<machine>:<name>:<id>`` → ``arn:…:stateMachine:<machine>``."""
    prefix, _, rest = execution_arn.partition(EXPRESS_MARKER)
    machine = rest.split(":", 1)[0]
    return f"{prefix}:stateMachine:{machine}"


def history_event(record: dict[str, Any]) -> dict[str, Any]:
    """One Express log record as the ``GetExecutionHistory`` event it was made from."""
    event_type = str(record["type"])
    if event_type.endswith("StateEntered"):
        details_key = "stateEnteredEventDetails"
    elif event_type.endswith("StateExited"):
        details_key = "stateExitedEventDetails"
    else:
        details_key = event_type[0].lower() + event_type[1:] + "EventDetails"
    return {
        "id": int(record["id"]),
        "type": event_type,
        "previousEventId": int(record.get("previous_event_id", 0)),
        "timestamp": datetime.datetime.fromtimestamp(
            int(record["event_timestamp"]) / 1_000, tz=datetime.UTC
        ),
        details_key: record.get("details") or {},
    }


def from_records(execution_arn: str, records: Iterable[dict[str, Any]]) -> ExpressHistory:
    """The execution's history from its log records (any order, other executions ignored)."""
    events = sorted(
        (history_event(r) for r in records if r.get("execution_arn") == execution_arn),
        key=lambda event: event["id"],
    )
    if not events:
        raise ExpressHistoryNotFound(
            f"no execution log record of {execution_arn}: Express executions are drawn from "
            "their logs, which need ExpressLogLevel=ALL"
        )
    status = next((ENDED[e["type"]] for e in reversed(events) if e["type"] in ENDED), "RUNNING")
    started = events[0].get("executionStartedEventDetails", {})
    name = execution_arn.split(EXPRESS_MARKER, 1)[1].split(":")[1]
    return ExpressHistory(
        execution_arn=execution_arn,
        state_machine_arn=state_machine_of(execution_arn),
        name=name,
        status=status,
        input=str(started.get("input") or "{}"),
        events=events,
    )


def read_history(stack: DeployedStack, execution_arn: str) -> ExpressHistory:
    """Find the execution's records in its state machine's log group and rebuild its history."""
    logs = stack.client("logs")
    records: list[dict[str, Any]] = []
    for group in _log_groups(stack, state_machine_of(execution_arn)):
        records.extend(_records(logs, group, execution_arn))
    return from_records(execution_arn, records)


def _log_groups(stack: DeployedStack, state_machine_arn: str) -> list[str]:
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=state_machine_arn
    )
    destinations = described.get("loggingConfiguration", {}).get("destinations", [])
    groups = [
        d["cloudWatchLogsLogGroup"]["logGroupArn"].split(":log-group:", 1)[1].removesuffix(":*")
        for d in destinations
        if "cloudWatchLogsLogGroup" in d
    ]
    # The local cloud's CloudFormation keeps no logging configuration: the stack's state
    # machine log groups are then the candidates.
    return groups or sorted(
        physical
        for physical in stack.resources.values()
        if physical.startswith(VENDED_STATES_LOG_GROUPS)
    )


def _records(logs: Any, group: str, execution_arn: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"logGroupName": group, "filterPattern": f'"{execution_arn}"'}
    while True:
        try:
            page = logs.filter_log_events(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        for event in page.get("events", []):
            try:
                record = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
        token = page.get("nextToken")
        if not token:
            return
        request["nextToken"] = token
