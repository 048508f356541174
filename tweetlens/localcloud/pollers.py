"""SQS event source mappings with Lambda's semantics, replacing moto's synchronous delivery.

moto invokes a mapped function inside ``SendMessage``, one message at a time, and deletes
messages a function reported as failed. Here that delivery is switched off and one poller
thread per enabled mapping long-polls the queue, gathers batches (BatchSize,
MaximumBatchingWindowInSeconds), runs up to ScalingConfig.MaximumConcurrency batches at
once, and deletes exactly what Lambda would delete. A message it does not delete is left as
it is, as Lambda leaves it: invisible until the queue's visibility timeout, or until what the
function itself set with ChangeMessageVisibility (the classifier's backoff under EXPRESS).
The redrive policy stays with the emulator's SQS, which moves a message to the DLQ on the
receive after maxReceiveCount.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import moto.sqs.models as sqs_models
from aws_lambda_powertools import Logger

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.models import EventSourceMappingConfig, InvocationResult

logger = Logger(service="localcloud")

MAX_RECEIVE_BATCH = 10
# Long polls are cut short so that stop() is honoured within about this many seconds.
POLL_WAIT_SECONDS = 1
DEFAULT_MAXIMUM_CONCURRENCY = 2

Invoker = Callable[[str, Any], InvocationResult]


def disable_moto_sqs_delivery(
    patches: PatchSet, on_message: Callable[[], None] = lambda: None
) -> None:
    """Make moto's queues forget their mappings while a message is added.

    ``Queue.add_message`` walks ``self.lambda_event_source_mappings`` to invoke functions.
    The attribute becomes a property that hides the mappings from that walk only (a
    thread-local flag), so Lambda's own bookkeeping of the mappings is left intact.
    ``on_message`` is told of every message added to any queue.
    """
    adding = threading.local()
    original_add_message = sqs_models.Queue.add_message

    def get_mappings(queue: Any) -> dict[str, Any]:
        if getattr(adding, "active", False):
            return {}
        mappings: dict[str, Any] = queue.__dict__.setdefault("_localcloud_esms", {})
        return mappings

    def set_mappings(queue: Any, value: dict[str, Any]) -> None:
        queue.__dict__["_localcloud_esms"] = value

    def add_message(queue: Any, message: Any) -> None:
        on_message()
        adding.active = True
        try:
            original_add_message(queue, message)
        finally:
            adding.active = False

    patches.replace(
        sqs_models.Queue, "lambda_event_source_mappings", property(get_mappings, set_mappings)
    )
    patches.replace(sqs_models.Queue, "add_message", add_message)


def to_sqs_record(message: Mapping[str, Any], event_source_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage entry in the shape Lambda puts in an SQS event's ``Records``."""
    attributes = dict(message.get("Attributes", {}))
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: _record_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _record_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted


@dataclass(frozen=True)
class BatchOutcome:
    """Which messages of a batch to delete; the rest come back after their visibility timeout."""

    delete: tuple[str, ...]
    retry: tuple[str, ...]


def settle_batch(
    message_ids: Sequence[str], result: InvocationResult, report_batch_item_failures: bool
) -> BatchOutcome:
    """Lambda's rules for what a batch's result means.

    A function error or timeout fails the whole batch. With ReportBatchItemFailures, a null
    or empty response or an empty ``batchItemFailures`` is full success; an invalid
    response, or an ``itemIdentifier`` that is empty, null, misnamed or not in the batch,
    fails the whole batch; otherwise only the listed messages are kept.
    """
    everything = tuple(message_ids)
    if result.error is not None:
        return BatchOutcome(delete=(), retry=everything)
    if not report_batch_item_failures:
        return BatchOutcome(delete=everything, retry=())
    try:
        response = result.payload
    except ValueError:
        return BatchOutcome(delete=(), retry=everything)
    if response is None or response == {}:
        return BatchOutcome(delete=everything, retry=())
    if not isinstance(response, dict):
        return BatchOutcome(delete=(), retry=everything)
    failures = response.get("batchItemFailures")
    if failures is None:
        return BatchOutcome(delete=everything, retry=())
    if not isinstance(failures, list):
        return BatchOutcome(delete=(), retry=everything)
    failed: list[str] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return BatchOutcome(delete=(), retry=everything)
        failed.append(identifier)
    return BatchOutcome(
        delete=tuple(mid for mid in message_ids if mid not in failed),
        retry=tuple(mid for mid in message_ids if mid in failed),
    )


class SqsPoller:
    """Lambda's SQS poller for one mapping."""

    def __init__(
        self,
        mapping: EventSourceMappingConfig,
        *,
        sqs: Any,
        invoke: Invoker,
        region: str,
        batching_window_scale: float = 1.0,
    ) -> None:
        if batching_window_scale <= 0:
            raise ValueError("batching_window_scale must be positive")
        self.mapping = mapping
        # The mapping keeps its MaximumBatchingWindowInSeconds as declared; only the poller's
        # wait for more messages runs on this faster clock (LocalCloud's batching_window_scale).
        self._batching_window_scale = batching_window_scale
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self._stop = threading.Event()
        concurrency = mapping.maximum_concurrency or DEFAULT_MAXIMUM_CONCURRENCY
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._batches: list[threading.Thread] = []
        self._thread = threading.Thread(
            target=self._run, name=f"sqs-poller-{mapping.uuid}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for batch in list(self._batches):
            batch.join(timeout)

    def in_flight_batches(self) -> int:
        with self._lock:
            return self._in_flight

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=POLL_WAIT_SECONDS):
                continue
            try:
                messages = self._gather()
            except Exception:
                logger.exception("SQS poll failed", queue_url=self.mapping.queue_url)
                messages = []
                self._stop.wait(POLL_WAIT_SECONDS)
            if not messages:
                self._slots.release()
                continue
            # Received messages stay "not visible" in the queue until deleted, so an idle
            # check cannot miss them between the receive and this count.
            with self._lock:
                self._in_flight += 1
            thread = threading.Thread(
                target=self._process, args=(messages,), name=f"sqs-batch-{self.mapping.uuid}"
            )
            with self._lock:
                self._batches = [t for t in self._batches if t.is_alive()] + [thread]
            thread.start()

    def _finish_slot(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def _receive(self, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        batch_size = self.mapping.batch_size
        messages = self._receive(min(MAX_RECEIVE_BATCH, batch_size), POLL_WAIT_SECONDS)
        if not messages:
            return []
        window = self.mapping.maximum_batching_window_seconds * self._batching_window_scale
        deadline = time.monotonic() + window
        while len(messages) < batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = max(0, min(POLL_WAIT_SECONDS, int(remaining)))
            more = self._receive(min(MAX_RECEIVE_BATCH, batch_size - len(messages)), wait)
            if not more and wait == 0:
                self._stop.wait(min(remaining, 0.05))
            messages.extend(more)
        return messages

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            records = [
                to_sqs_record(message, self.mapping.event_source_arn, self._region)
                for message in messages
            ]
            result = self._invoke(self.mapping.function_name, {"Records": records})
            ids = [message["MessageId"] for message in messages]
            outcome = settle_batch(ids, result, self.mapping.report_batch_item_failures)
            handles = {message["MessageId"]: message["ReceiptHandle"] for message in messages}
            self._delete([handles[mid] for mid in outcome.delete])
            if outcome.retry:
                logger.info(
                    "Batch records left for retry",
                    function_name=self.mapping.function_name,
                    failed=len(outcome.retry),
                    error_type=result.error.error_type if result.error else None,
                )
        except Exception:
            logger.exception("SQS batch processing failed", queue_url=self.mapping.queue_url)
        finally:
            self._finish_slot()

    def _delete(self, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), MAX_RECEIVE_BATCH):
            chunk = receipt_handles[start : start + MAX_RECEIVE_BATCH]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": h} for index, h in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.warning(
                    "Delete failed", queue_url=self.mapping.queue_url, code=failure.get("Code")
                )
