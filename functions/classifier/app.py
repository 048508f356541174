"""ClassifierFunction handler: SQS batch from a route queue -> partial batch response."""

from __future__ import annotations

# isort: off
# First, before boto3: init runs without the cyclic garbage collector (see common.coldstart).
import common.coldstart
# isort: on

import os
import time
from typing import Any

import boto3

# Imported before anything that imports pydantic: Powertools' batch types import every parser
# model (for type hints only) when pydantic is already loaded, a cold-start cost for nothing.
# tests/unit/coldstart pins that the parser package stays out of the function. The batch
# package's own import (asyncio and every event class, ~26 ms) is kept on purpose: the
# partial-batch contract is Powertools' to maintain, not ours (README, Cold start).
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from classifier.logic import Classifier
from classifier.models import RouteQueueRecord
from classifier.observability import logger, metrics, tracer
from classifier.settings import AWS_CONFIG, load_settings, stepfunctions_config
from common.clients import on_first_use

settings = load_settings(os.environ)
# Metrics read the namespace when observability was imported; use the value just validated.
metrics.namespace = settings.metrics_namespace
classifier = Classifier(
    settings=settings,
    # Only a rejected message or an EXPRESS dead letter calls SQS: most invocations never do.
    # DynamoDB and SQS: timeouts and retries bounded by the invocation (classifier.settings).
    sqs=on_first_use(lambda: boto3.client("sqs", config=AWS_CONFIG)),
    # Timeouts and retries bounded by the invocation (classifier.settings).
    stepfunctions=boto3.client("stepfunctions", config=stepfunctions_config(settings)),
    dynamodb=boto3.client("dynamodb", config=AWS_CONFIG),
    metrics=metrics,
    clock=time.time,
    sleep=time.sleep,
)
# Powertools types ``model`` as one of its parser models; it only calls ``model_validate``.
processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)  # type: ignore[arg-type]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Start one execution per new image URL; report only the records worth retrying.

    When every record fails, Powertools raises ``BatchProcessingError`` instead of listing them
    all: the invocation fails and SQS delivers the whole batch again, which is the same effect.
    A failed ResultsTable lookup (``DoneLookupFailed``) or an event that is not an SQS batch
    (``InvalidEvent``) also fails the invocation, before any record has been handled.
    """
    batch = classifier.open_batch(
        classifier.check_event(event), remaining_ms=context.get_remaining_time_in_millis
    )
    return process_partial_response(
        event=event, record_handler=batch.handle_record, processor=processor, context=context
    )


# Last statement of init: everything above is long-lived (see common.coldstart).
common.coldstart.init_done()
