"""SendMessageBatch to the route queues, retrying only the entries SQS failed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from common.messages import PhotoMessage
from producer.observability import logger, tracer

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SendMessageBatch takes at most 10 entries per call.
BATCH_SIZE = 10
MAX_ATTEMPTS = 4
BASE_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 2.0


class PublishError(Exception):
    """Some messages could not be put on a route queue; the checkpoint must not move."""

    def __init__(self, route: str, failures: Mapping[str, str]) -> None:
        self.route = route
        self.failures = dict(failures)
        detail = ", ".join(f"{entry}: {reason}" for entry, reason in sorted(self.failures.items()))
        super().__init__(f"{len(self.failures)} message(s) not sent to route {route}: {detail}")


class SqsPublisher:
    """Puts route messages on their queues; never returns before every message is accepted."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_urls: Mapping[str, str],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = sqs
        self._queue_urls = dict(queue_urls)
        self._max_attempts = max_attempts
        self._sleep = sleep

    @tracer.capture_method
    def publish(self, route: str, messages: Sequence[PhotoMessage]) -> int:
        """Send every message to the route's queue; return how many were sent."""
        queue_url = self._queue_urls[route]
        for start in range(0, len(messages), BATCH_SIZE):
            chunk = messages[start : start + BATCH_SIZE]
            # Entry ids only need to be unique within one call.
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(start + offset), "MessageBody": message.model_dump_json()}
                for offset, message in enumerate(chunk)
            ]
            self._send_batch(route, queue_url, entries)
        return len(messages)

    def _send_batch(
        self, route: str, queue_url: str, entries: list[SendMessageBatchRequestEntryTypeDef]
    ) -> None:
        pending = entries
        failures: dict[str, str] = {}
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self._sleep(_backoff(attempt))
            try:
                response = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=pending)
            except (ClientError, BotoCoreError) as error:
                # botocore already retried throttling and connection errors with backoff.
                raise PublishError(
                    route, {entry["Id"]: _error_text(error) for entry in pending}
                ) from error
            failed = response.get("Failed", [])
            if not failed:
                return
            failures = {
                item["Id"]: f"{item['Code']} {item.get('Message', '')}".strip() for item in failed
            }
            logger.warning(
                "SQS rejected batch entries",
                route=route,
                attempt=attempt,
                failed_entries=len(failed),
                codes=sorted({item["Code"] for item in failed}),
            )
            failed_ids = set(failures)
            pending = [entry for entry in pending if entry["Id"] in failed_ids]
        raise PublishError(route, failures)


def _backoff(attempt: int) -> float:
    # Full jitter: retries of concurrent producers do not land on SQS at the same moment.
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempt - 2))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


def _error_text(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
