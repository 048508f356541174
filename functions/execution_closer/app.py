"""ExecutionCloserFunction handler: a status-change event, or the schedule's sweep tick.

Invoked asynchronously by EventBridge: an error is retried by Lambda, and what still fails
stays visible in the function's errors alarm; the sweep closes any execution an event missed.
"""

from __future__ import annotations

# isort: off
# First, before boto3: init runs without the cyclic garbage collector (see common.coldstart).
import common.coldstart
# isort: on

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from common.clients import on_first_use
from common.validation import summarize
from execution_closer.closer import Closer
from execution_closer.models import (
    DEFAULT_ERRORS,
    UNSUCCESSFUL,
    DetectedBy,
    EndedExecution,
    ScheduledEvent,
    StatusChangeEvent,
)
from execution_closer.observability import logger, metrics, tracer
from execution_closer.settings import AWS_CONFIG, load_settings

settings = load_settings(os.environ)
closer = Closer(
    settings=settings,
    dynamodb=boto3.client("dynamodb", config=AWS_CONFIG),
    # Only closing an execution reads its history and sends a letter. Most invocations close
    # none: the sweep ticks every 5 minutes and finds no expired claim unless something broke.
    stepfunctions=on_first_use(lambda: boto3.client("stepfunctions", config=AWS_CONFIG)),
    sqs=on_first_use(lambda: boto3.client("sqs", config=AWS_CONFIG)),
    metrics=metrics,
)


class InvalidEvent(Exception):
    """Neither a Step Functions status-change event nor a scheduled tick: a wrong trigger."""


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dead-letter the execution an event reports, or sweep the expired claims."""
    kind = event.get("detail-type") if isinstance(event, dict) else None
    try:
        if kind == "Scheduled Event":
            ScheduledEvent.model_validate(event)
            swept = closer.sweep(context.get_remaining_time_in_millis)
            return {"closed": [outcome.value for outcome in swept]}
        change = StatusChangeEvent.model_validate(event)
    except ValidationError as error:
        raise InvalidEvent(summarize(error, root="event")) from error
    detail = change.detail
    if detail.stateMachineArn != settings.state_machine_arn:
        # The rule only forwards this stack's state machine; a hand-made event (a sample of
        # events/, whose ARN is no deployed one) is told apart here rather than closed.
        logger.info(
            "Status change needs no dead letter: another state machine's execution",
            state_machine=detail.stateMachineArn,
        )
        return {"closed": []}
    if detail.status not in UNSUCCESSFUL:
        logger.info("Status change needs no dead letter", status=detail.status.value)
        return {"closed": []}
    ended = EndedExecution(
        arn=detail.executionArn,
        status=detail.status,
        error=detail.error or DEFAULT_ERRORS[detail.status],
        cause=detail.cause or "",
        input=detail.input,
        detected_by=DetectedBy.STATUS_CHANGE_EVENT,
    )
    return {"closed": [closer.close(ended).value]}


# Last statement of init: everything above is long-lived (see common.coldstart).
common.coldstart.init_done()
