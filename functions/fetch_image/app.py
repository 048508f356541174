"""FetchImageFunction handler: ``{"url", "bucket"}`` -> the image safely stored in S3.

A Step Functions task, not an API: failures are raised, and the state machine matches the
exception's class name (see fetch_image.errors).
"""

from __future__ import annotations

# isort: off
# First, before boto3: init runs without the cyclic garbage collector (see common.coldstart).
import common.coldstart
# isort: on

import functools
import os
import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fetch_image.errors import FetchImageError
from fetch_image.fetcher import fetch_to_s3
from fetch_image.observability import logger, metrics, tracer
from fetch_image.settings import S3_CONFIG, STORE_MARGIN_SECONDS, FetchSettings, describe
from fetch_image.transport import Opener, Resolver, pinned_https_opener, system_resolver

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SETTINGS = FetchSettings.from_environ(os.environ)
logger.info("FetchImageFunction settings", settings=describe(SETTINGS))

# The network seam, read at call time so tests and the local cloud can replace either one.
RESOLVER: Resolver = system_resolver
OPENER: Opener = pinned_https_opener


@functools.cache
def s3_client() -> S3Client:
    """One client per container, created on first use from the default session, its calls
    bounded within STORE_MARGIN_SECONDS (fetch_image.settings)."""
    return boto3.client("s3", config=S3_CONFIG)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Download the image at ``event["url"]`` into ``event["bucket"]`` and describe it."""
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    try:
        result = fetch_to_s3(
            event,
            settings=SETTINGS,
            resolver=RESOLVER,
            opener=OPENER,
            s3=s3_client(),
            deadline=deadline - STORE_MARGIN_SECONDS,
            clock=time.monotonic,
        )
    except FetchImageError as error:
        logger.warning("Image not fetched", error=type(error).__name__, reason=str(error))
        # The error dimension is safe on the shared set: a failed invocation adds no other metric.
        metrics.add_dimension(name="error", value=type(error).__name__)
        metrics.add_metric(name="ImageFetchFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="ImageFetched", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ImageBytes", unit=MetricUnit.Bytes, value=result.size)
    return result.model_dump()


# Last statement of init: everything above is long-lived (see common.coldstart).
common.coldstart.init_done()
