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
import itertools
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


EXECUTION_EVENTS = frozenset({"ExecutionStarted", *ENDED})
# A CloudWatch Logs JSON filter for the records that start or end an execution (the emulator
# ignores JSON filters and returns every record: the type is checked again when read).
EXECUTION_EVENTS_PATTERN = (
    "{ " + " || ".join(f'$.type = "{event}"' for event in sorted(EXECUTION_EVENTS)) + " }"
)
# How many start and end records a listing reads at most.
MAX_LISTED_RECORDS = 20_000
# A listing reads the log group backwards from now in windows that double, from the first to
# at most the look-back (Standard executions are listed for 90 days): a page of recent
# executions costs a request or two, a name looked up across 90 days about 16.
FIRST_WINDOW = datetime.timedelta(minutes=5)
LOOK_BACK = datetime.timedelta(days=90)


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


@dataclass(frozen=True)
class WorkflowLogging:
    """A state machine's type and execution logging, as ``DescribeStateMachine`` says them."""

    state_machine_arn: str
    workflow_type: str
    level: str
    log_groups: list[str]

    @property
    def is_express(self) -> bool:
        return self.workflow_type == "EXPRESS"

    @property
    def logs_every_execution(self) -> bool:
        """Whether every Express execution can be found and drawn from the logs (level ALL)."""
        return self.is_express and self.level == "ALL"


@dataclass(frozen=True)
class LoggedExecution:
    """An Express execution as its start and end records in the log group show it."""

    execution_arn: str
    name: str
    status: str
    started_at: datetime.datetime | None
    stopped_at: datetime.datetime | None

    @property
    def execution_id(self) -> str:
        return self.execution_arn.rsplit(":", 1)[-1]


def workflow_logging(stack: DeployedStack, state_machine_arn: str) -> WorkflowLogging:
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=state_machine_arn
    )
    configuration = described.get("loggingConfiguration") or {}
    return WorkflowLogging(
        state_machine_arn=state_machine_arn,
        workflow_type=str(described.get("type") or "STANDARD"),
        level=str(configuration.get("level") or "OFF"),
        log_groups=_groups_of(stack, configuration),
    )


def logged_executions(
    stack: DeployedStack,
    logging: WorkflowLogging,
    *,
    name: str | None = None,
    enough: int | None = None,
    now: datetime.datetime | None = None,
    max_records: int = MAX_LISTED_RECORDS,
) -> list[LoggedExecution]:
    """The Express executions of the log groups, newest first (``name``: only those).

    Read from the records that start and end an execution, so only a machine logging ``ALL``
    has every one (``ERROR`` logs no start, and only failures). CloudWatch Logs returns records
    oldest first, so the groups are read backwards in doubling windows up to ``LOOK_BACK``,
    stopping once ``enough`` executions have started (a page's worth) or ``max_records``
    records were read: a console page, not an archive.
    """
    marker = logging.state_machine_arn.replace(":stateMachine:", EXPRESS_MARKER, 1) + ":"
    wanted = f"{marker}{name}:" if name is not None else marker
    started: dict[str, datetime.datetime] = {}
    ended: dict[str, tuple[str, datetime.datetime]] = {}
    logs = stack.client("logs")
    end = now or datetime.datetime.now(datetime.UTC)
    oldest = end - LOOK_BACK
    window = FIRST_WINDOW
    read = 0
    while end > oldest and read < max_records and (enough is None or len(started) < enough):
        start = max(end - window, oldest)
        span = {"startTime": _millis(start), "endTime": _millis(end) - 1}
        records = itertools.chain.from_iterable(
            _matching(logs, group, EXECUTION_EVENTS_PATTERN, span) for group in logging.log_groups
        )
        for record in itertools.islice(records, max_records - read):
            read += 1
            arn = str(record.get("execution_arn", ""))
            event_type = str(record.get("type", ""))
            if not arn.startswith(wanted) or event_type not in EXECUTION_EVENTS:
                continue
            moment = datetime.datetime.fromtimestamp(
                int(record["event_timestamp"]) / 1_000, tz=datetime.UTC
            )
            if event_type == "ExecutionStarted":
                started[arn] = moment
            else:
                ended[arn] = (ENDED[event_type], moment)
        end, window = start, window * 2
    found = [
        LoggedExecution(
            execution_arn=arn,
            name=arn.removeprefix(marker).split(":", 1)[0],
            status=ended[arn][0] if arn in ended else "RUNNING",
            started_at=started.get(arn),
            stopped_at=ended[arn][1] if arn in ended else None,
        )
        for arn in set(started) | set(ended)
    ]
    earliest = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return sorted(
        found,
        key=lambda e: (e.started_at or e.stopped_at or earliest, e.execution_arn),
        reverse=True,
    )


def _millis(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1_000)


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
    return _groups_of(stack, described.get("loggingConfiguration") or {})


def _groups_of(stack: DeployedStack, configuration: dict[str, Any]) -> list[str]:
    destinations = configuration.get("destinations") or []
    groups = [
        d["cloudWatchLogsLogGroup"]["logGroupArn"].split(":log-group:", 1)[1].removesuffix(":*")
        for d in destinations
        if "cloudWatchLogsLogGroup" in d
    ]
    # A machine described without a destination (logging OFF): the stack's state machine log
    # groups are the candidates, so an ARN's lookup says "not found" rather than failing.
    return groups or sorted(
        physical
        for physical in stack.resources.values()
        if physical.startswith(VENDED_STATES_LOG_GROUPS)
    )


def _records(logs: Any, group: str, execution_arn: str) -> Iterator[dict[str, Any]]:
    yield from _matching(logs, group, f'"{execution_arn}"')


def _matching(
    logs: Any, group: str, pattern: str, span: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"logGroupName": group, "filterPattern": pattern, **(span or {})}
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
