"""Models of what crosses ClassifierFunction's boundaries besides the shared contract."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# The SQS record is modelled here rather than taken from Powertools' parser: importing
# ``aws_lambda_powertools.utilities.parser.models`` runs the parser package's ``__init__``, which
# builds every envelope and every event model Powertools ships, a cold-start cost the classifier
# paid for this one model. The fields and their types are those of Powertools 3's
# ``SqsRecordModel``, so a record is accepted or refused exactly as before.


class SqsAttributes(BaseModel):
    """The system attributes Lambda puts on each SQS record."""

    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    MessageDeduplicationId: str | None = None
    MessageGroupId: str | None = None
    SenderId: str
    SentTimestamp: datetime
    SequenceNumber: str | None = None
    AWSTraceHeader: str | None = None
    DeadLetterQueueSourceArn: str | None = None


class SqsMessageAttribute(BaseModel):
    """One message attribute of an SQS record, as the event source mapping spells it."""

    stringValue: str | None = None
    binaryValue: str | None = None
    stringListValues: list[str] = []
    binaryListValues: list[str] = []
    dataType: str


class RouteQueueRecord(BaseModel):
    """One SQS record from a route queue.

    The body stays a string on purpose: a body that is not a valid ``PhotoMessage`` must go to
    the route's dead-letter queue at once, whereas a model failure inside Powertools'
    ``BatchProcessor`` would make it a batch item failure, received five more times.
    """

    messageId: str
    receiptHandle: str
    body: str
    attributes: SqsAttributes
    messageAttributes: dict[str, SqsMessageAttribute]
    md5OfBody: str
    md5OfMessageAttributes: str | None = None
    eventSource: Literal["aws:sqs"]
    eventSourceARN: str
    awsRegion: str


class RouteQueueEvent(BaseModel):
    """The invocation event the route queues' event source mapping sends."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    Records: list[RouteQueueRecord]


class Outcome(StrEnum):
    """How a record ended when it was deleted from its queue; each value is a metric name."""

    STARTED = "ExecutionStarted"
    # The URL's result is DONE, or another record of the same batch carries it.
    DUPLICATE = "Duplicate"
    # An execution for the URL is running (a redelivery, or a message racing another).
    IN_FLIGHT = "InFlight"
    REJECTED = "Rejected"
    # EXPRESS only: the synchronous execution succeeded (classified, or a duplicate by claim).
    CLASSIFIED = "Classified"
    # EXPRESS only: the execution failed for good; its one dead letter is sent.
    DEAD_LETTERED = "ExecutionDeadLettered"


# The structured log key of the classifier's one record per SQS record, and its schema's
# version: the tooling's accounting reads this key, never the line's wording
# (docs/architecture.md, "Classifier outcomes"). A change to the fields is a new version.
RECORD_OUTCOME_KEY: Final = "record_outcome"
RECORD_OUTCOME_VERSION: Final = 1


class RecordOutcomeLog(BaseModel):
    """How one SQS record ended, as logged under ``RECORD_OUTCOME_KEY``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = RECORD_OUTCOME_VERSION
    message_id: str
    outcome: Outcome
    # The record's queue; the route (and its URL's digest) once its message was valid.
    event_source_arn: str
    route: str | None = None
    url_sha256: str | None = None
    # The execution the record started, or the one owning its URL (InFlight, a Duplicate of
    # a DONE image); "" when there is none.
    execution: str = ""
    # EXPRESS: what the record's execution billed, StartSyncExecution's billingDetails
    # (billedDurationInMilliseconds, billedMemoryUsedInMB); left out when none ran.
    billing: dict[str, int] | None = None


class FailureMetric(StrEnum):
    """Metric names of records left on the queue (batch item failures) to be received again."""

    TRANSIENT = "TransientFailure"
    CONFIGURATION = "ConfigurationError"


class Rejection(BaseModel):
    """Why a body can never become a ``PhotoMessage``: the route DLQ's message attributes."""

    # Only a rejected message makes one: pydantic builds the validator then, not at every cold
    # start (README, Cold start).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    error: Literal["NotJson", "InvalidMessage"]
    reason: Annotated[str, Field(min_length=1)]
