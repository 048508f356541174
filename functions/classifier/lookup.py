"""Where each image URL stands: one BatchGetItem per batch on ResultsTable."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from classifier.observability import logger

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
RESULT_SORT_KEY = "RESULT"
DONE_STATUS = "DONE"
IN_PROGRESS_STATUS = "IN_PROGRESS"
FAILED_STATUS = "FAILED"
# open_claim of a claim the closer's sweep watches (the sparse OpenClaims index).
OPEN_CLAIM = "OPEN"


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

    @property
    def done(self) -> bool:
        return self.status == DONE_STATUS

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS_STATUS


def claim_of(item: Mapping[str, AttributeValueTypeDef]) -> Claim:
    """A result item (DynamoDB's typed attributes) as a ``Claim``; an empty item has no status."""
    return Claim(
        status=item.get("status", {}).get("S", ""),
        execution=item.get("execution", {}).get("S", ""),
        lease_expires_at=int(item.get("lease_expires_at", {}).get("N", "0")),
        message=item.get("message", {}).get("S", ""),
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
            "ProjectionExpression": "pk, #status, #execution, lease_expires_at, message",
            "ExpressionAttributeNames": {"#status": "status", "#execution": "execution"},
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
