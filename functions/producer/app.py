"""ProducerFunction handler: scheduled every minute, enqueues new photo posts per route."""

from __future__ import annotations

# isort: off
# First, before boto3: init runs without the cyclic garbage collector (see common.coldstart).
import common.coldstart
# isort: on

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from common.validation import summarize
from producer.checkpoint import CheckpointStore
from producer.credentials import BearerTokenReader
from producer.events import EventBridgeModel
from producer.observability import logger, metrics, tracer
from producer.publisher import BatchSender, DeadLetterQueue, SqsPublisher
from producer.run import run_producer
from producer.settings import AWS_CONFIG, ProducerSettings
from producer.source import SourceFactory


class InvalidEvent(Exception):
    """The invocation event is not an EventBridge scheduled event."""


def token_reader(store: str | None) -> BearerTokenReader:
    """A reader with a client for the configured store only: the other would never be called."""
    if store == "ssm":
        return BearerTokenReader(
            ssm=SSMProvider(boto3_client=boto3.client("ssm", config=AWS_CONFIG))
        )
    return BearerTokenReader(
        secrets=SecretsProvider(boto3_client=boto3.client("secretsmanager", config=AWS_CONFIG))
    )


settings = ProducerSettings.from_environ(os.environ)
sender = BatchSender(boto3.client("sqs", config=AWS_CONFIG))
publisher = SqsPublisher(sender, settings.route_queue_urls)
dead_letters = DeadLetterQueue(sender, settings.producer_dlq_url)
checkpoints = CheckpointStore(
    boto3.client("dynamodb", config=AWS_CONFIG), settings.checkpoints_table, settings.checkpoint_id
)
sources = (
    SourceFactory(
        settings,
        token_reader=token_reader(settings.bearer_token_store),
    )
    if settings.post_source == "x-api"
    else SourceFactory(
        settings,
        s3=boto3.client("s3", config=AWS_CONFIG)
        if settings.replay_uri.startswith("s3://")
        else None,
    )
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        scheduled = EventBridgeModel.model_validate(event)
    except ValidationError as error:
        # Field names and rules only: the event may be anything, of any size.
        problems = summarize(error, root="event")
        raise InvalidEvent(f"expected an EventBridge scheduled event: {problems}") from error
    logger.info("Scheduled run", scheduled_at=scheduled.time.isoformat(), rule=scheduled.resources)
    summary = run_producer(
        settings=settings,
        source=sources.source(),
        checkpoints=checkpoints,
        publisher=publisher,
        dead_letters=dead_letters,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return summary.model_dump()


# Last statement of init: everything above is long-lived (see common.coldstart).
common.coldstart.init_done()
