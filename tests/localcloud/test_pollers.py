"""Lambda's SQS batch semantics: what a batch result deletes, and the record shape."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.models import EventSourceMappingConfig, InvocationResult, LambdaError
from tweetlens.localcloud.pollers import BatchOutcome, SqsPoller, settle_batch, to_sqs_record

IDS = ("m1", "m2", "m3")


def _result(
    payload: Any = None, *, error: LambdaError | None = None, raw: str | None = None
) -> InvocationResult:
    now = time.time()
    return InvocationResult(
        function_name="worker",
        request_id="req",
        payload_json=raw if raw is not None else (None if error else json.dumps(payload)),
        error=error,
        report="REPORT",
        logs="",
        duration_ms=1.0,
        cold_start=False,
        started_at=now,
        ended_at=now,
    )


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
)
def test_empty_or_null_response_is_full_success(payload: Any) -> None:
    # GIVEN ReportBatchItemFailures and a response reporting nothing
    # WHEN the batch is settled
    outcome = settle_batch(IDS, _result(payload), report_batch_item_failures=True)
    # THEN every message is deleted
    assert outcome == BatchOutcome(delete=IDS, retry=())


def test_reported_failures_stay_and_the_rest_is_deleted() -> None:
    # GIVEN a response listing one failed message
    payload = {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    # WHEN the batch is settled
    outcome = settle_batch(IDS, _result(payload), report_batch_item_failures=True)
    # THEN only that message is kept for retry
    assert outcome == BatchOutcome(delete=("m1", "m3"), retry=("m2",))


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "m1"}]},
        {"batchItemFailures": ["m1"]},
        {"batchItemFailures": "m1"},
        ["m1"],
        "m1",
    ],
)
def test_invalid_failure_report_fails_the_whole_batch(payload: Any) -> None:
    # GIVEN a malformed response or an identifier not in the batch
    # WHEN the batch is settled
    outcome = settle_batch(IDS, _result(payload), report_batch_item_failures=True)
    # THEN nothing is deleted
    assert outcome == BatchOutcome(delete=(), retry=IDS)


def test_failure_report_is_ignored_without_report_batch_item_failures() -> None:
    # GIVEN a mapping without ReportBatchItemFailures and a response listing a failure
    payload = {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    # WHEN the batch is settled
    outcome = settle_batch(IDS, _result(payload), report_batch_item_failures=False)
    # THEN the whole batch succeeded, as in AWS
    assert outcome == BatchOutcome(delete=IDS, retry=())


@pytest.mark.parametrize("report_batch_item_failures", [True, False])
def test_function_error_fails_the_whole_batch(report_batch_item_failures: bool) -> None:
    # GIVEN a function error (or timeout)
    error = LambdaError(error_type="Sandbox.Timedout", error_message="Task timed out")
    # WHEN the batch is settled
    outcome = settle_batch(IDS, _result(error=error), report_batch_item_failures)
    # THEN nothing is deleted
    assert outcome == BatchOutcome(delete=(), retry=IDS)


@mock_aws
def test_record_has_lambda_sqs_event_shape() -> None:
    # GIVEN a message with attributes received with all system attributes
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"id": 1}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "photo"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    message = sqs.receive_message(
        QueueUrl=url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    # WHEN it is turned into an event record
    record = to_sqs_record(message, arn, "eu-west-1")
    # THEN it has the keys and values Lambda puts in an SQS event
    assert record == {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": '{"id": 1}',
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": message["Attributes"]["SentTimestamp"],
            "SenderId": message["Attributes"]["SenderId"],
            "ApproximateFirstReceiveTimestamp": message["Attributes"][
                "ApproximateFirstReceiveTimestamp"
            ],
        },
        "messageAttributes": {
            "kind": {
                "stringValue": "photo",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "blob": {
                "binaryValue": "AAE=",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": message["MD5OfBody"],
        "md5OfMessageAttributes": message["MD5OfMessageAttributes"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "eu-west-1",
    }


@mock_aws
def test_emulator_sqs_moves_a_message_to_the_dlq_after_max_receive_count() -> None:
    # GIVEN a queue whose redrive policy allows two receives
    sqs = boto3.client("sqs", region_name="eu-west-1")
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    # WHEN it is received twice without being deleted, then received again
    counts = [
        sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"][0][
            "Attributes"
        ]["ApproximateReceiveCount"]
        for _ in range(2)
    ]
    third = sqs.receive_message(QueueUrl=url).get("Messages", [])
    # THEN the third receive finds it gone to the DLQ, which the poller relies on
    assert counts == ["1", "2"]
    assert third == []
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dlq_url)["Messages"]] == ["poison"]


class _SlowFunction:
    """Records the batches it receives and how many ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.batches: list[list[str]] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, function_name: str, event: Any) -> InvocationResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.batches.append([record["body"] for record in event["Records"]])
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        return _result(None)


def _mapping(url: str, arn: str, **changes: Any) -> EventSourceMappingConfig:
    values: dict[str, Any] = {
        "uuid": "mapping-1",
        "function_name": "worker",
        "event_source_arn": arn,
        "queue_url": url,
        "batch_size": 1,
        "maximum_batching_window_seconds": 0,
        "report_batch_item_failures": True,
        "maximum_concurrency": 2,
        "enabled": True,
    }
    values.update(changes)
    return EventSourceMappingConfig(**values)


def _queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@mock_aws
def test_maximum_concurrency_caps_concurrent_batches() -> None:
    # GIVEN six messages, batches of one, and MaximumConcurrency 2
    sqs = boto3.client("sqs", region_name="us-east-1")
    url, arn = _queue(sqs)
    for i in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    function = _SlowFunction(0.3)
    poller = SqsPoller(_mapping(url, arn), sqs=sqs, invoke=function, region="us-east-1")
    # WHEN the poller drains the queue
    poller.start()
    try:
        _wait_for(lambda: len(function.batches) == 6 and poller.in_flight_batches() == 0, 15)
    finally:
        poller.stop()
    # THEN never more than two batches ran at once, and every message was deleted
    assert function.peak == 2
    assert sorted(body for batch in function.batches for body in batch) == [
        str(i) for i in range(6)
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    ) == ("0", "0")


@mock_aws
def test_batching_window_gathers_messages_into_one_batch() -> None:
    # GIVEN a mapping with BatchSize 5 and a 1 s batching window
    sqs = boto3.client("sqs", region_name="us-east-1")
    url, arn = _queue(sqs)
    function = _SlowFunction(0.0)
    mapping = _mapping(url, arn, batch_size=5, maximum_batching_window_seconds=1)
    poller = SqsPoller(mapping, sqs=sqs, invoke=function, region="us-east-1")
    poller.start()
    try:
        # WHEN three messages arrive a little apart, within the window
        for body in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
            time.sleep(0.2)
        _wait_for(lambda: len(function.batches) >= 1 and poller.in_flight_batches() == 0, 10)
    finally:
        poller.stop()
    # THEN they reach the function as one batch
    assert function.batches == [["a", "b", "c"]]


class _TimedFunction:
    """Records each batch it receives and when it was invoked (``time.monotonic``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, event: Any) -> InvocationResult:
        with self._lock:
            self.calls.append((time.monotonic(), [r["body"] for r in event["Records"]]))
        return _result(None)


@mock_aws
def test_scaled_batching_window_gathers_for_its_share_of_the_declared_window() -> None:
    # GIVEN a mapping with BatchSize 5 and a 5 s batching window, run at a scale of 0.2
    sqs = boto3.client("sqs", region_name="us-east-1")
    url, arn = _queue(sqs)
    function = _TimedFunction()
    mapping = _mapping(url, arn, batch_size=5, maximum_batching_window_seconds=5)
    poller = SqsPoller(
        mapping, sqs=sqs, invoke=function, region="us-east-1", batching_window_scale=0.2
    )
    poller.start()
    try:
        # WHEN two messages arrive 0.2 s apart, and a third 1.2 s after them
        sent = time.monotonic()
        for body in ("a", "b"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
            time.sleep(0.2)
        time.sleep(1.2)
        sqs.send_message(QueueUrl=url, MessageBody="c")
        _wait_for(lambda: len(function.calls) >= 2 and poller.in_flight_batches() == 0, 10)
    finally:
        poller.stop()
    # THEN the first two reach the function together, no sooner than a second (a fifth of the
    # window) after the first arrived, and the third alone: the declared 5 s would have
    # gathered all three
    [(first_at, first), (_, second)] = function.calls
    assert (first, second) == (["a", "b"], ["c"])
    assert first_at - sent >= 1.0
    # AND the mapping still reads as declared
    assert poller.mapping.maximum_batching_window_seconds == 5


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_a_batching_window_scale_that_is_not_positive_is_refused(scale: float) -> None:
    # GIVEN a mapping
    mapping = _mapping("https://sqs.us-east-1.amazonaws.com/123456789012/work", "arn:q")
    # WHEN a poller, or a local cloud, is made with that scale
    # THEN both refuse it before anything starts
    with pytest.raises(ValueError, match="batching_window_scale must be positive"):
        SqsPoller(
            mapping,
            sqs=None,
            invoke=_TimedFunction(),
            region="us-east-1",
            batching_window_scale=scale,
        )
    with pytest.raises(ValueError, match="batching_window_scale must be positive"):
        LocalCloud(SAMPLE_TEMPLATE, batching_window_scale=scale)
