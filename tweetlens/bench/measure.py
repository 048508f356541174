"""What one design did, read back from the local cloud after the workload settled.

Everything is read with observer clients (left out of the request counts) or from the local
cloud's own records: the Rekognition hook's calls, the Lambda runtime's REPORT lines, the
request log, execution histories and log groups, the results table and the dead-letter queues.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from tweetlens.bench.designs import Design
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.requestlog import RequestStats

_REPORT: Final = re.compile(r"Billed Duration: (\d+) ms\tMemory Size: (\d+) MB")
EXPRESS_MIN_MEMORY_MB: Final = 64
EXPRESS_BILLING_STEP_MS: Final = 100
MAX_LETTERS: Final = 100_000


class FunctionUse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    invocations: int
    gb_seconds: float


class ExpressBilling(BaseModel):
    """Express duration times memory, from ``billingDetails`` where AWS's shape is found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gb_seconds: float
    # Executions that reported billingDetails (0 when estimated).
    billed_executions: int = 0
    # "billingDetails" (read from a sync response logged, or the log group), or how estimated.
    basis: str


class Measurement(BaseModel):
    """Raw figures of one design's run; ``report`` turns them into rates and dollars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    posts: int
    unique_images: int
    done: int
    seconds: float  # first post published → last result stored
    latencies_ms: list[float]
    detect_labels_calls: int  # admitted by the quota (answered or refused for the image)
    detect_labels_billed: int  # answered with labels
    labelled_twice: int
    throttles: int
    dead_letters: int
    dead_letter_errors: dict[str, int]
    lost: int
    executions: int
    transitions: int
    express: ExpressBilling | None
    functions: dict[str, FunctionUse]
    requests: RequestStats
    lambda_log_bytes: int
    # What the state machines logged to their log groups (Express execution logs by level).
    workflow_log_bytes: int = 0

    @property
    def p50_ms(self) -> float:
        return _percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        return _percentile(self.latencies_ms, 95)


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def read_results(cloud: LocalCloud, design: Design) -> dict[str, float | None]:
    """URL → when its result was written (epoch s; None when the item has no time)."""
    dynamodb = cloud.observer_client("dynamodb")
    results: dict[str, float | None] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=cloud.resources[design.results_table]
    ):
        for item in page["Items"]:
            if all(item.get(k, {}).get("S") == v for k, v in design.result_filter):
                stored = item.get("classified_at", {}).get("S")
                results[item[design.url_attribute]["S"]] = epoch(stored) if stored else None
    return results


def count_results(cloud: LocalCloud, design: Design) -> int:
    """How many finished results the table holds, for the progress bar.

    ``Select=COUNT`` with the result filter as a ``FilterExpression``: the emulator still reads
    every item, but answers a number instead of serialising the whole table every second (a
    profile of a 300-image bench found 13 % of the emulator's time in that serialisation).
    """
    dynamodb = cloud.observer_client("dynamodb")
    arguments: dict[str, Any] = {
        "TableName": cloud.resources[design.results_table],
        "Select": "COUNT",
    }
    if design.result_filter:
        arguments["FilterExpression"] = " AND ".join(
            f"#k{n} = :v{n}" for n in range(len(design.result_filter))
        )
        arguments["ExpressionAttributeNames"] = {
            f"#k{n}": key for n, (key, _) in enumerate(design.result_filter)
        }
        arguments["ExpressionAttributeValues"] = {
            f":v{n}": {"S": value} for n, (_, value) in enumerate(design.result_filter)
        }
    return sum(int(page["Count"]) for page in dynamodb.get_paginator("scan").paginate(**arguments))


def dead_letters(cloud: LocalCloud) -> list[tuple[set[str], str]]:
    """Every letter on the stack's dead-letter queues: (URLs it names, its error)."""
    sqs = cloud.observer_client("sqs")
    letters: list[tuple[set[str], str]] = []
    for logical_id, url in cloud.resources.items():
        if not logical_id.endswith("DeadLetterQueue"):
            continue
        seen: set[str] = set()
        while len(seen) < MAX_LETTERS:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            fresh = [message for message in batch if message["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                body = _json(message["Body"])
                letters.append((set(_strings_named(body, "url")), _error(body)))
    return letters


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _strings_named(value: Any, key: str) -> Iterator[str]:
    """Every string under ``key`` at any depth, JSON-in-strings included."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == key and isinstance(inner, str):
                yield inner
            else:
                yield from _strings_named(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings_named(inner, key)
    elif isinstance(value, str) and value.startswith("{"):
        parsed = _json(value)
        if isinstance(parsed, dict):
            yield from _strings_named(parsed, key)


def _error(body: Any) -> str:
    """A letter's error name: ``error`` as a string, or the ``Error`` of an ``error`` object
    (the workflow's letters carry Step Functions' ``{"Error", "Cause"}``)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("Error"), str):
            return str(error["Error"])
        for inner in body.values():
            found = _error(inner)
            if found != "unknown":
                return found
    return "unknown"


class ExecutionFigures(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    executions: int
    transitions: int
    # URL → when its execution succeeded (epoch s).
    succeeded_at: dict[str, float]
    durations_ms: list[float]


def billed_transitions(events: list[dict[str, Any]]) -> int:
    """The state transitions a Standard execution is billed for, from its history.

    Every state entered is one, and so is every retry: "each retry will be charged as an
    additional state transition" (aws.amazon.com/step-functions/pricing). A Task state's
    attempts are its ``TaskScheduled`` events, so its retries are those beyond one per visit.
    """
    types = [str(event["type"]) for event in events]
    entered = sum(kind.endswith("StateEntered") for kind in types)
    task_visits = types.count("TaskStateEntered")
    attempts = types.count("TaskScheduled")
    return entered + max(0, attempts - task_visits)


def execution_figures(cloud: LocalCloud, design: Design) -> ExecutionFigures:
    """Executions listed by the state machine, with their histories (STANDARD).

    EXPRESS: none. ListExecutions refuses an Express machine (in AWS and the local cloud);
    its executions are counted from their ``billingDetails`` (``express_billing``).
    """
    if design.state_machine is None or design.workflow_type == "EXPRESS":
        return ExecutionFigures(executions=0, transitions=0, succeeded_at={}, durations_ms=[])
    sfn = cloud.observer_client("stepfunctions")
    arn = cloud.resources[design.state_machine]
    transitions = executions = 0
    succeeded_at: dict[str, float] = {}
    durations: list[float] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        for execution in page["executions"]:
            executions += 1
            events = [
                event
                for history in sfn.get_paginator("get_execution_history").paginate(
                    executionArn=execution["executionArn"]
                )
                for event in history["events"]
            ]
            transitions += billed_transitions(events)
            if execution.get("stopDate") is not None:
                durations.append(
                    1000 * (execution["stopDate"] - execution["startDate"]).total_seconds()
                )
            started = next((e for e in events if e["type"] == "ExecutionStarted"), None)
            if execution["status"] == "SUCCEEDED" and started is not None:
                execution_input = _json(started["executionStartedEventDetails"].get("input", "{}"))
                for url in _strings_named(execution_input, "url"):
                    succeeded_at[url] = events[-1]["timestamp"].timestamp()
    return ExecutionFigures(
        executions=executions,
        transitions=transitions,
        succeeded_at=succeeded_at,
        durations_ms=durations,
    )


def express_billing(
    cloud: LocalCloud, design: Design, figures: ExecutionFigures
) -> ExpressBilling | None:
    """Express GB-seconds: AWS's ``billingDetails`` (StartSyncExecution's answer) wherever a
    function's log or the workflow's log group shows them; otherwise estimated from the
    executions' durations at Express's 64 MB minimum and 100 ms steps, and labelled so."""
    if design.workflow_type != "EXPRESS":
        return None
    details = list(_billing_details(_function_log_records(cloud)))
    details += list(_billing_details(_log_group_records(cloud)))
    if details:
        gb_seconds = sum(ms / 1000 * mb / 1024 for ms, mb in details)
        return ExpressBilling(
            gb_seconds=gb_seconds, basis="billingDetails", billed_executions=len(details)
        )
    gb_seconds = sum(
        math.ceil(ms / EXPRESS_BILLING_STEP_MS) * EXPRESS_BILLING_STEP_MS / 1000
        for ms in figures.durations_ms
    ) * (EXPRESS_MIN_MEMORY_MB / 1024)
    return ExpressBilling(
        gb_seconds=gb_seconds,
        basis="estimated: execution durations, 64 MB, 100 ms steps (no billingDetails found)",
    )


def _function_log_records(cloud: LocalCloud) -> Iterator[Any]:
    for record in cloud.invocations():
        for line in record.logs.splitlines():
            if "billedDurationInMilliseconds" in line:
                yield _json(line[line.find("{") :])


def _log_group_records(cloud: LocalCloud) -> Iterator[Any]:
    logs = cloud.observer_client("logs")
    for logical_id, name in cloud.resources.items():
        if not logical_id.endswith("LogGroup"):
            continue
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=name)
            for page in pages:
                for event in page["events"]:
                    if "billedDurationInMilliseconds" in event["message"]:
                        yield _json(event["message"])
        except logs.exceptions.ResourceNotFoundException:
            continue


def workflow_log_bytes(cloud: LocalCloud) -> int:
    """Bytes of the log events in the stack's log groups: what a workflow's logging level
    costs at CloudWatch Logs ingestion (Lambda's own logs are counted from the invocations)."""
    logs = cloud.observer_client("logs")
    total = 0
    for logical_id, name in cloud.resources.items():
        if not logical_id.endswith("LogGroup"):
            continue
        try:
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=name):
                total += sum(len(event["message"].encode("utf-8")) for event in page["events"])
        except logs.exceptions.ResourceNotFoundException:
            continue
    return total


def _billing_details(records: Iterator[Any]) -> Iterator[tuple[float, float]]:
    for record in records:
        yield from _find_billing(record)


def _find_billing(value: Any) -> Iterator[tuple[float, float]]:
    if isinstance(value, dict):
        if "billedDurationInMilliseconds" in value:
            yield (
                float(value["billedDurationInMilliseconds"]),
                float(value.get("billedMemoryUsedInMB", EXPRESS_MIN_MEMORY_MB)),
            )
            return
        for inner in value.values():
            yield from _find_billing(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _find_billing(inner)


def function_use(cloud: LocalCloud) -> tuple[dict[str, FunctionUse], int]:
    """Per function (logical id): invocations and GB-seconds from the REPORT lines (billed
    duration times memory); and the bytes every invocation logged (what Lambda ships to Logs)."""
    names = {config.name: logical_id for logical_id, config in cloud.functions.items()}
    invocations: dict[str, int] = {}
    gb_seconds: dict[str, float] = {}
    log_bytes = 0
    for record in cloud.invocations():
        logical_id = names.get(record.function_name, record.function_name)
        invocations[logical_id] = invocations.get(logical_id, 0) + 1
        match = _REPORT.search(record.report)
        if match is not None:
            billed_ms, memory_mb = int(match.group(1)), int(match.group(2))
            gb_seconds[logical_id] = gb_seconds.get(logical_id, 0.0) + (
                billed_ms / 1000 * memory_mb / 1024
            )
        # The logs as Lambda ships them: START, the function's lines, END and REPORT (the
        # REPORT line is already in them; counting it again overstated every invocation).
        log_bytes += len(record.logs.encode("utf-8"))
    uses = {
        name: FunctionUse(invocations=count, gb_seconds=gb_seconds.get(name, 0.0))
        for name, count in sorted(invocations.items())
    }
    return uses, log_bytes


def measure(
    cloud: LocalCloud,
    design: Design,
    *,
    posts: int,
    published_at: Mapping[str, float],
    requests: RequestStats,
) -> Measurement:
    """Read back one settled design. ``published_at``: URL → when its first post was sent."""
    results = read_results(cloud, design)
    figures = execution_figures(cloud, design)
    letters = dead_letters(cloud)
    lettered = {url for urls, _ in letters for url in urls}
    unique = set(published_at)
    done = unique & set(results)
    stored = {
        url: figures.succeeded_at.get(url) or results[url] or published_at[url] for url in done
    }
    latencies = sorted(1000 * (stored[url] - published_at[url]) for url in done)
    first_published = min(published_at.values())
    seconds = (max(stored.values()) - first_published) if stored else 0.0
    hook = cloud.rekognition
    calls = hook.calls_by_source() if hook is not None else {}
    answered = hook.answered_by_source() if hook is not None else {}
    errors: dict[str, int] = {}
    for _, error in letters:
        errors[error] = errors.get(error, 0) + 1
    functions, log_bytes = function_use(cloud)
    express = express_billing(cloud, design, figures)
    return Measurement(
        posts=posts,
        unique_images=len(unique),
        done=len(done),
        seconds=seconds,
        latencies_ms=latencies,
        detect_labels_calls=sum(calls.values()),
        detect_labels_billed=sum(answered.values()),
        labelled_twice=sum(count - 1 for count in answered.values() if count > 1),
        throttles=hook.throttled() if hook is not None else 0,
        dead_letters=len(letters),
        dead_letter_errors=dict(sorted(errors.items())),
        lost=len(unique - done - lettered),
        # Express executions are not listed by AWS: those that reported billing count too.
        executions=max(figures.executions, express.billed_executions if express else 0),
        transitions=figures.transitions,
        express=express,
        functions=functions,
        requests=requests,
        lambda_log_bytes=log_bytes,
        workflow_log_bytes=workflow_log_bytes(cloud),
    )
