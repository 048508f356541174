"""SQS partial batch responses exactly as Powertools' ``BatchProcessor`` makes them, lighter.

Importing any module of ``aws_lambda_powertools.utilities.batch`` runs the package's
``__init__``, which loads ``asyncio`` (for ``AsyncBatchProcessor``) and, through the
``data_classes`` package's ``__init__``, every event class Powertools ships: about 26 ms of CPU
per cold start (median beside ``tweetlens coldstart``'s floor, 2026-12-02), a tenth of the
floor itself, for a synchronous SQS path that is one loop. This module is that path, with
Powertools 3.37's semantics (``utilities/batch/base.py``, ``BatchProcessor`` with
``EventType.SQS`` and a ``model``; ``decorators.py``, ``process_partial_response``):

- each record is validated with ``model``, then handed to ``record_handler``; a record the model
  refuses, or whose handler raises an ``Exception``, is a batch item failure named by its
  ``messageId``, in record order;
- when every record failed, Powertools' own ``BatchProcessingError`` is raised with each
  failure's ``(type, exception, traceback)``, and its ``UnexpectedBatchTypeError`` for a
  batch without records; each is imported only then, by a failed invocation.

``tests/unit/coldstart/test_sqs_batch.py`` runs this and Powertools on the same batches and
compares responses and errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypedDict


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    """What Lambda reads back from an SQS-triggered function with ReportBatchItemFailures."""

    batchItemFailures: list[BatchItemFailure]


class SqsRecordModel(Protocol):
    """A pydantic model of one SQS record, as Powertools' ``model`` argument is."""

    messageId: str

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


ExceptionInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def process_partial_response[Record: SqsRecordModel](
    records: Sequence[Mapping[str, Any]],
    record_handler: Callable[[Record], object],
    model: type[Record],
) -> PartialBatchResponse:
    """Handle each SQS record of a batch; report the failed ones for SQS to deliver again.

    ``record_handler`` gets each record as an instance of ``model``. Raises Powertools'
    ``BatchProcessingError`` when every record failed: the invocation fails and SQS delivers
    the whole batch again, as with Powertools; ``UnexpectedBatchTypeError`` (a
    ``BatchProcessingError``) when there is no record.
    """
    if not records:
        # Lambda never sends an empty batch: only a hand-made event has none, refused as such.
        from aws_lambda_powertools.utilities.batch.exceptions import (  # noqa: PLC0415
            UnexpectedBatchTypeError,
        )

        raise UnexpectedBatchTypeError(
            "Unexpected batch event type. Possible values are: SQS, KinesisDataStreams, "
            "DynamoDBStreams, Kafka"
        )
    failures: list[BatchItemFailure] = []
    exceptions: list[ExceptionInfo] = []
    for raw in records:
        record: Record | None = None
        try:
            record = model.model_validate(raw)
            record_handler(record)
        except Exception as error:
            # A record the model refused has no instance to read its id from: Powertools takes
            # it from the raw record then. Both name the same message.
            message_id = raw["messageId"] if record is None else record.messageId
            failures.append({"itemIdentifier": message_id})
            exceptions.append((type(error), error, error.__traceback__))
    if len(failures) == len(records):
        # Imported only here, on a failed invocation: it loads the whole batch package (above).
        from aws_lambda_powertools.utilities.batch.exceptions import (  # noqa: PLC0415
            BatchProcessingError,
        )

        raise BatchProcessingError(
            msg=(
                f"All records failed processing. {len(exceptions)} individual errors logged "
                "separately below."
            ),
            child_exceptions=list(exceptions),
        )
    return {"batchItemFailures": failures}
