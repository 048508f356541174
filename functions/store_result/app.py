"""StoreResultFunction handler: the ClassifyImage task that makes a result DONE with its labels.

A Step Functions task, not an API: failures are raised and matched by class name in the ASL
(``ClaimLost`` → the execution ends as a duplicate, ``ResultStoreBusy`` → retried).
"""

from __future__ import annotations

# isort: off
# First, before boto3: init runs without the cyclic garbage collector (see common.coldstart).
import common.coldstart
# isort: on

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from common.messages import url_digest
from common.validation import summarize
from store_result.errors import InvalidStoreRequest
from store_result.models import StoreRequest
from store_result.observability import logger, metrics, tracer
from store_result.settings import DYNAMODB_CONFIG, load_settings
from store_result.store import store_result

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SETTINGS = load_settings(os.environ)


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    """One client per container, created on first use from the default session, its calls
    bounded within the task's timeout (store_result.settings)."""
    return boto3.client("dynamodb", config=DYNAMODB_CONFIG)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Store one classified image; return ``{"status": "DONE", "url", "labels"}``."""
    try:
        request = StoreRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidStoreRequest(summarize(error)) from error
    result = store_result(dynamodb_client(), SETTINGS.results_table, request)
    logger.info(
        "Result stored",
        url_sha256=url_digest(request.message.url),
        execution=request.execution,
        labels=len(result.labels),
    )
    metrics.add_metric(name="ImageClassified", unit=MetricUnit.Count, value=1)
    return result.model_dump()


# Last statement of init: everything above is long-lived (see common.coldstart).
common.coldstart.init_done()
