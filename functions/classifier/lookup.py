"""Where each image URL stands: one BatchGetItem per batch on ResultsTable.

A URL whose execution failed *for good* stays failed: a later message for it (another post of
the photo, a retweet, a copy of the message) is a duplicate of that failure, whose one dead
letter says why, and runs nothing, under either workflow type. For good means any unsuccessful
end but a FAILED with a transient error (``TRANSIENT_EXECUTION_ERRORS``), which the next message
for the URL takes over. A FAILED whose error is the image host's (``RETRIED_BY_LATER_POSTS``)
is for good for the failed message only, which keeps its one dead letter: a later, different
message (another post, a retweet, another route's message) takes the URL over, and only a copy
of the failed message (same post, photo and route) is its duplicate. Two messages still run the
URL again (``repeats_failure``): a replay (``tweetlens dlq redrive`` sends the letter back with
``attempt`` + 1, above the failed message's), and, under EXPRESS, the very SQS message whose
execution failed, delivered again because its dead letter could not be sent: it is not a
duplicate, and ``classifier.express`` sends that letter from the claim without running it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from classifier.observability import logger
from common.messages import PhotoMessage, owner_token

# The result item's key and its classified status, shared with the tooling.
from tweetlens_naming import DONE_STATUS as DONE_STATUS  # noqa: PLC0414
from tweetlens_naming import RESULT_SORT_KEY as RESULT_SORT_KEY  # noqa: PLC0414

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesOutputTypeDef,
        KeysAndAttributesUnionTypeDef,
    )

# BatchGetItem accepts at most 100 keys per request.
MAX_KEYS_PER_REQUEST = 100
# UnprocessedKeys means DynamoDB is short of capacity right now; a few quick retries cover a
# blip, and anything longer is better left to SQS (the batch is received again later).
UNPROCESSED_RETRIES = 3
UNPROCESSED_BACKOFF_SECONDS = 0.05
IN_PROGRESS_STATUS = "IN_PROGRESS"
FAILED_STATUS = "FAILED"
# open_claim of a claim the closer's sweep watches (the sparse OpenClaims index).
OPEN_CLAIM = "OPEN"
# Errors an execution ends with that say "not now" rather than "never": the names the workflow
# itself retries (statemachine/classify_image.asl.json), once its retries are spent.
TRANSIENT_EXECUTION_ERRORS = frozenset(
    {
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerErrorException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Rekognition.ThrottlingException",
        "Rekognition.ProvisionedThroughputExceededException",
        "Rekognition.InternalServerErrorException",
        "ResultStoreBusy",
    }
)
# Errors that end an execution for good for its own message (one dead letter, no retry via SQS)
# but not for the image: a later, different message for the URL runs it again. The image host
# failed (5xx, 408, 429, timeouts, resets: fetch_image.errors.ImageHostError) after the
# workflow's own retries of Fetch Image. That state comes before Detect Labels, so running the
# URL again can never label it twice, and an outage of the host must not make every later post
# of the photo a duplicate until an operator redrives the letter. Not States.Timeout nor
# LeaseExpired (where the execution stopped is unknown) nor any error after Detect Labels: a
# call that timed out may have been answered and billed, and a second run would label twice.
RETRIED_BY_LATER_POSTS = frozenset({"ImageHostError"})
# The error of a reservation released because StartSyncExecution refused (EXPRESS): nothing
# ran and the message stays queued, so it is no failure of the image.
START_FAILED_ERROR = "StartSyncExecutionFailed"
# How an execution can end without success (ABORTED: stopped by an operator; never Express).
UNSUCCESSFUL_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Claim:
    """A URL's result item as far as starting an execution is concerned."""

    status: str
    # ARN of the execution that claimed it last ("" when the item has none).
    execution: str
    # Epoch seconds after which the claim is dead (0 when the item has none).
    lease_expires_at: int = 0
    # The route message the claiming execution runs, as JSON ("" when the item has none).
    message: str = ""
    # Why a FAILED claim was closed: the execution's error ("" when the item has none).
    error: str = ""
    # ... and its cause, as the closing wrote it ("" when the item has none).
    cause: str = ""
    # How the execution ended and its ARN, when the EXPRESS classifier closed the claim
    # (common.closing.mark_failed); "" otherwise.
    ended_status: str = ""
    ended_execution: str = ""

    @property
    def done(self) -> bool:
        return self.status == DONE_STATUS

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS_STATUS

    @property
    def failed_for_good(self) -> bool:
        """Closed FAILED after a permanent failure (its one dead letter is sent)."""
        return self.status == FAILED_STATUS and ended_for_good(FAILED_STATUS, self.error)


def ended_for_good(status: str, error: str) -> bool:
    """Whether an execution that ended ``status`` with ``error`` failed permanently: every
    unsuccessful end but a FAILED with a transient error."""
    if status not in UNSUCCESSFUL_STATUSES:
        return False
    return status != FAILED_STATUS or error not in TRANSIENT_EXECUTION_ERRORS | {START_FAILED_ERROR}


def repeats_failure(claim: Claim, message: PhotoMessage, token: str, error: str) -> bool:
    """Whether ``message`` only repeats the permanent failure (with ``error``) of ``claim``'s
    execution, so it is a duplicate of it (the caller has judged the failure permanent).

    Not when ``message`` is a replay (its ``attempt`` is above the failed message's), nor when
    it is the very SQS message (``token``) whose execution failed: under EXPRESS, that message
    is delivered again only when its dead letter could not be sent, and it must still send it
    (from the claim, ``classifier.express``).
    After an error of ``RETRIED_BY_LATER_POSTS`` only a copy of the failed message repeats it:
    any other message for the URL runs. When in doubt (no readable message on the claim), the
    message runs: running again never loses a message, taking it for a duplicate could.
    """
    if owner_token(claim.execution) == token:
        return False
    try:
        failed = PhotoMessage.model_validate_json(claim.message)
    except ValueError:
        return False
    if message.attempt > failed.attempt:
        return False
    if error in RETRIED_BY_LATER_POSTS:
        return _same_post(failed, message)
    return True


def _same_post(failed: PhotoMessage, message: PhotoMessage) -> bool:
    """Whether ``message`` is a copy of ``failed`` (re-published, delivered twice): the same
    photo of the same post on the same route, which the failed message's letter stands for."""
    return (message.post_id, message.media_key, message.route) == (
        failed.post_id,
        failed.media_key,
        failed.route,
    )


def claim_of(item: Mapping[str, AttributeValueTypeDef]) -> Claim:
    """A result item (DynamoDB's typed attributes) as a ``Claim``; an empty item has no status."""
    return Claim(
        status=item.get("status", {}).get("S", ""),
        execution=item.get("execution", {}).get("S", ""),
        lease_expires_at=int(item.get("lease_expires_at", {}).get("N", "0")),
        message=item.get("message", {}).get("S", ""),
        error=item.get("error", {}).get("S", ""),
        cause=item.get("cause", {}).get("S", ""),
        ended_status=item.get("ended_status", {}).get("S", ""),
        ended_execution=item.get("ended_execution", {}).get("S", ""),
    )


class DoneLookupFailed(Exception):
    """ResultsTable could not say where the URLs stand; nothing in the batch has been started."""


def find_claims(
    dynamodb: DynamoDBClient,
    table: str,
    urls: Collection[str],
    sleep: Callable[[float], None],
) -> dict[str, Claim]:
    """The result items of ``urls`` that exist, by URL."""
    claims: dict[str, Claim] = {}
    for chunk in _chunks(sorted(urls), MAX_KEYS_PER_REQUEST):
        claims.update(_claims_in_chunk(dynamodb, table, chunk, sleep))
    return claims


def _claims_in_chunk(
    dynamodb: DynamoDBClient,
    table: str,
    urls: list[str],
    sleep: Callable[[float], None],
) -> dict[str, Claim]:
    request: dict[str, KeysAndAttributesUnionTypeDef] = {
        table: {
            "Keys": [{"pk": {"S": url}, "sk": {"S": RESULT_SORT_KEY}} for url in urls],
            # status is a DynamoDB reserved word.
            "ProjectionExpression": (
                "pk, #status, #execution, lease_expires_at, message, #error, #cause, "
                "ended_status, ended_execution"
            ),
            "ExpressionAttributeNames": {
                "#status": "status",
                "#execution": "execution",
                "#error": "error",
                "#cause": "cause",
            },
        }
    }
    claims: dict[str, Claim] = {}
    for attempt in range(UNPROCESSED_RETRIES + 1):
        if attempt:
            sleep(UNPROCESSED_BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            response = dynamodb.batch_get_item(RequestItems=request)
        except (ClientError, BotoCoreError) as exc:
            raise DoneLookupFailed(f"BatchGetItem on {table} failed: {exc}") from exc
        for item in response.get("Responses", {}).get(table, []):
            claims[item["pk"]["S"]] = claim_of(item)
        unprocessed: Mapping[str, KeysAndAttributesOutputTypeDef] = response.get(
            "UnprocessedKeys", {}
        )
        if table not in unprocessed or not unprocessed[table]["Keys"]:
            return claims
        # UnprocessedKeys repeats the projection and attribute names, so it is the next request.
        request = dict(unprocessed)
        logger.warning(
            "BatchGetItem left keys unprocessed",
            table=table,
            unprocessed=len(unprocessed[table]["Keys"]),
            attempt=attempt + 1,
        )
    raise DoneLookupFailed(
        f"BatchGetItem on {table} left keys unprocessed after {UNPROCESSED_RETRIES} retries"
    )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
