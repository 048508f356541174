"""``common.sqs_batch`` answers every batch exactly as Powertools' ``BatchProcessor`` does.

The classifier uses ``common.sqs_batch`` so that its cold start does not import Powertools'
batch package (asyncio and every event class); each test runs both on the same SQS batch, with
the classifier's record model, and compares what they return or raise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import (
    process_partial_response as powertools_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import (
    BatchProcessingError,
    UnexpectedBatchTypeError,
)

from classifier.models import RouteQueueRecord
from common.sqs_batch import process_partial_response

EVENTS = Path(__file__).resolve().parents[3] / "events"


class Refused(Exception):
    """What the record handler raises for the records a test makes fail."""


def sample_records(count: int) -> list[dict[str, Any]]:
    """``count`` records of the SQS batch sample (10 records, distinct message ids)."""
    event = json.loads((EVENTS / "classifier_sqs_batch.json").read_text("utf-8"))
    records: list[dict[str, Any]] = event["Records"][:count]
    return records


def failing_for(message_ids: set[str]) -> Callable[[RouteQueueRecord], str]:
    def handler(record: RouteQueueRecord) -> str:
        if record.messageId in message_ids:
            raise Refused(f"refused {record.messageId}")
        return record.messageId

    return handler


def both(
    records: list[dict[str, Any]], handler: Callable[[RouteQueueRecord], object]
) -> tuple[object, object]:
    """(Powertools' outcome, this module's): the response, or the BatchProcessingError raised."""
    outcomes: list[object] = []
    for run in ("powertools", "common"):
        try:
            if run == "powertools":
                processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)  # type: ignore[arg-type]
                outcomes.append(
                    powertools_process_partial_response(
                        event={"Records": copy.deepcopy(records)},
                        record_handler=handler,
                        processor=processor,
                    )
                )
            else:
                outcomes.append(
                    process_partial_response(copy.deepcopy(records), handler, RouteQueueRecord)
                )
        except BatchProcessingError as error:
            outcomes.append(error)
    return outcomes[0], outcomes[1]


def test_a_batch_that_succeeds_reports_no_failure_like_powertools() -> None:
    # GIVEN a batch of 10 records, all handled
    records = sample_records(10)

    # WHEN both process it
    powertools, ours = both(records, failing_for(set()))

    # THEN both report no batch item failure
    assert powertools == ours == {"batchItemFailures": []}


def test_failed_records_are_reported_by_message_id_in_order_like_powertools() -> None:
    # GIVEN a batch where the handler raises for records 1 and 4
    records = sample_records(6)
    failing = {records[4]["messageId"], records[1]["messageId"]}

    # WHEN both process it
    powertools, ours = both(records, failing_for(failing))

    # THEN both name exactly those records, in record order
    assert ours == powertools
    assert ours == {
        "batchItemFailures": [
            {"itemIdentifier": records[1]["messageId"]},
            {"itemIdentifier": records[4]["messageId"]},
        ]
    }


def test_a_record_the_model_refuses_is_a_failure_named_by_its_raw_message_id() -> None:
    # GIVEN a batch whose record 2 lacks a field the SQS record model requires
    records = sample_records(3)
    del records[2]["md5OfBody"]

    # WHEN both process it
    powertools, ours = both(records, failing_for(set()))

    # THEN both report that record, named from the raw record
    refused = records[2]["messageId"]
    assert ours == powertools == {"batchItemFailures": [{"itemIdentifier": refused}]}


def test_a_batch_that_fails_whole_raises_powertools_error_like_powertools() -> None:
    # GIVEN a batch of 3 records where every record fails, one of them refused by the model
    records = sample_records(3)
    del records[0]["eventSourceARN"]
    failing = {record["messageId"] for record in records}

    # WHEN both process it
    powertools, ours = both(records, failing_for(failing))

    # THEN both raise BatchProcessingError with the same message and the same child errors
    assert isinstance(powertools, BatchProcessingError)
    assert isinstance(ours, BatchProcessingError)
    assert (
        ours.msg
        == powertools.msg
        == ("All records failed processing. 3 individual errors logged separately below.")
    )

    def described(error: BatchProcessingError) -> list[tuple[str, str]]:
        return [(kind.__name__, str(value)) for kind, value, _ in error.child_exceptions]

    assert described(ours) == described(powertools)
    assert [kind for kind, _, _ in ours.child_exceptions][1:] == [Refused, Refused]
    assert all(traceback is not None for _, _, traceback in ours.child_exceptions)


def test_an_empty_batch_is_refused_like_powertools() -> None:
    # GIVEN a batch without records (Lambda never sends one; a hand-made event may)
    # WHEN both process it
    powertools, ours = both([], failing_for(set()))

    # THEN both raise Powertools' UnexpectedBatchTypeError with the same message
    assert isinstance(powertools, UnexpectedBatchTypeError)
    assert isinstance(ours, UnexpectedBatchTypeError)
    assert (
        ours.msg
        == powertools.msg
        == (
            "Unexpected batch event type. Possible values are: SQS, KinesisDataStreams, "
            "DynamoDBStreams, Kafka"
        )
    )
