"""SendMessageBatch to the route queues and the producer's dead-letter queue.

SQS answers each entry of a batch on its own. An entry failed with ``SenderFault: true`` (e.g.
``InvalidMessageContents``: a character SQS does not accept) fails the same way every time, so
it is returned to the caller to be dead-lettered; one failed with ``SenderFault: false`` is
SQS's own trouble and is sent again with backoff, and still failing it raises, so that the run
ends before its checkpoint moves past the message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from common.messages import PhotoMessage
from producer.letters import PageLetter, PhotoLetter, PostLetter, RangeLetter, encode_letter
from producer.observability import logger, tracer

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        BatchResultErrorEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

# SendMessageBatch takes at most 10 entries per call.
BATCH_SIZE = 10
MAX_ATTEMPTS = 4
BASE_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 2.0

Letter = PageLetter | PostLetter | PhotoLetter | RangeLetter


class PublishError(Exception):
    """Some messages could not be put on a queue for now; the checkpoint must not move."""

    def __init__(self, route: str, failures: Mapping[str, str]) -> None:
        self.route = route
        self.failures = dict(failures)
        detail = ", ".join(f"{entry}: {reason}" for entry, reason in sorted(self.failures.items()))
        super().__init__(f"{len(self.failures)} message(s) not sent to route {route}: {detail}")


class DeadLetterError(Exception):
    """A dead letter could not be written; the checkpoint must not move past its data."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        detail = ", ".join(f"{entry}: {reason}" for entry, reason in sorted(self.failures.items()))
        super().__init__(f"{len(self.failures)} dead letter(s) not written: {detail}")


class Refusal(BaseModel):
    """SQS's answer to an entry it refused as the sender's fault."""

    # This and RefusedMessage: only an entry SQS refused makes one, so their validators are
    # built then, not at every cold start (README, Cold start).
    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    message: str


class RefusedMessage(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    message: PhotoMessage
    refusal: Refusal


class BatchSender:
    """SendMessageBatch in tens, retrying transient entry failures with capped, jittered backoff."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = sqs
        self._max_attempts = max_attempts
        self._sleep = sleep

    def send(self, name: str, queue_url: str, bodies: Sequence[str]) -> dict[int, Refusal]:
        """Send every body; return those SQS refused as the sender's fault, by index.

        Raises ``PublishError`` (named ``name``) when the call fails or an entry keeps failing
        on SQS's side.
        """
        refused: dict[int, Refusal] = {}
        for start in range(0, len(bodies), BATCH_SIZE):
            # Entry ids only need to be unique within one call; the index finds the body again.
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(start + offset), "MessageBody": body}
                for offset, body in enumerate(bodies[start : start + BATCH_SIZE])
            ]
            for entry_id, refusal in self._send_batch(name, queue_url, entries).items():
                refused[int(entry_id)] = refusal
        return refused

    def _send_batch(
        self, name: str, queue_url: str, entries: list[SendMessageBatchRequestEntryTypeDef]
    ) -> dict[str, Refusal]:
        pending = entries
        refused: dict[str, Refusal] = {}
        failures: dict[str, str] = {}
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self._sleep(_backoff(attempt))
            # A batch SQS accepted but whose answer was lost (read timeout) is sent again by
            # botocore's retry: its messages are on the queue twice. Accepted, not prevented:
            # a standard queue delivers at least once anyway, the route message has no id SQS
            # could dedupe on (entry ids are per call, and standard queues take no
            # MessageDeduplicationId), and the classifier's claim on the URL makes the second
            # copy a duplicate, not a second classification. Only the accounting sees it: SQS
            # accepted more than the run summary's "published" (README, "Run it locally").
            try:
                response = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=pending)
            except (ClientError, BotoCoreError) as error:
                # botocore already retried throttling and connection errors with backoff; what
                # is left (a missing queue, a denied call) is not any one message's fault.
                raise PublishError(
                    name, {entry["Id"]: _error_text(error) for entry in pending}
                ) from error
            failed = response.get("Failed", [])
            refused.update(
                {item["Id"]: _refusal(item) for item in failed if item.get("SenderFault")}
            )
            failures = {item["Id"]: _failure_text(item) for item in failed}
            transient = {entry_id for entry_id in failures if entry_id not in refused}
            if failed:
                logger.warning(
                    "SQS rejected batch entries",
                    queue=name,
                    attempt=attempt,
                    failed_entries=len(failed),
                    refused_entries=len(failed) - len(transient),
                    codes=sorted({item["Code"] for item in failed}),
                )
            if not transient:
                return refused
            pending = [entry for entry in pending if entry["Id"] in transient]
        raise PublishError(name, {entry["Id"]: failures[entry["Id"]] for entry in pending})


class SqsPublisher:
    """Puts route messages on their queues; returns the ones SQS refused for good."""

    def __init__(self, sender: BatchSender, queue_urls: Mapping[str, str]) -> None:
        self._sender = sender
        self._queue_urls = dict(queue_urls)

    @tracer.capture_method(capture_response=False)
    def publish(self, route: str, messages: Sequence[PhotoMessage]) -> list[RefusedMessage]:
        """Send every message to the route's queue; the sent count is the rest."""
        refused = self._sender.send(
            route, self._queue_urls[route], [message.model_dump_json() for message in messages]
        )
        return [
            RefusedMessage(message=messages[index], refusal=refusal)
            for index, refusal in sorted(refused.items())
        ]


class DeadLetterQueue:
    """Writes producer dead letters; a letter that cannot be written fails the run."""

    def __init__(self, sender: BatchSender, queue_url: str) -> None:
        self._sender = sender
        self._queue_url = queue_url

    @tracer.capture_method(capture_response=False)
    def send(self, letters: Sequence[Letter]) -> None:
        try:
            refused = self._sender.send(
                "dead-letter", self._queue_url, [encode_letter(letter) for letter in letters]
            )
        except PublishError as error:
            raise DeadLetterError(error.failures) from error
        if refused:
            # A letter is ASCII JSON under the size limit: a refusal is a bug or a changed
            # limit, and nothing else can hold the data, so the run stops here.
            raise DeadLetterError(
                {str(index): f"{r.code} {r.message}".strip() for index, r in refused.items()}
            )


def _refusal(item: BatchResultErrorEntryTypeDef) -> Refusal:
    return Refusal(code=item["Code"], message=item.get("Message", ""))


def _failure_text(item: BatchResultErrorEntryTypeDef) -> str:
    return f"{item['Code']} {item.get('Message', '')}".strip()


def _backoff(attempt: int) -> float:
    # Full jitter: retries of concurrent producers do not land on SQS at the same moment.
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempt - 2))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


def _error_text(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
