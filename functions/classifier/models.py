"""Models of what crosses ClassifierFunction's boundaries besides the shared contract."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field


class RouteQueueRecord(SqsRecordModel):
    """One SQS record from a route queue.

    The body stays a string on purpose: a body that is not a valid ``PhotoMessage`` must go to
    the route's dead-letter queue at once, whereas a model failure inside Powertools'
    ``BatchProcessor`` would make it a batch item failure, received five more times.
    """

    body: str


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


class FailureMetric(StrEnum):
    """Metric names of records left on the queue (batch item failures) to be received again."""

    TRANSIENT = "TransientFailure"
    CONFIGURATION = "ConfigurationError"


class Rejection(BaseModel):
    """Why a body can never become a ``PhotoMessage``: the route DLQ's message attributes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: Literal["NotJson", "InvalidMessage"]
    reason: Annotated[str, Field(min_length=1)]
