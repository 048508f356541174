"""Which image URLs are already classified: one BatchGetItem per batch on ResultsTable."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from classifier.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
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


class DoneLookupFailed(Exception):
    """ResultsTable could not say which URLs are done; nothing in the batch has been started."""


def find_done_urls(
    dynamodb: DynamoDBClient,
    table: str,
    urls: Collection[str],
    sleep: Callable[[float], None],
) -> frozenset[str]:
    """Return the subset of ``urls`` whose result item has ``status = DONE``."""
    done: set[str] = set()
    for chunk in _chunks(sorted(urls), MAX_KEYS_PER_REQUEST):
        done.update(_done_in_chunk(dynamodb, table, chunk, sleep))
    return frozenset(done)


def _done_in_chunk(
    dynamodb: DynamoDBClient,
    table: str,
    urls: list[str],
    sleep: Callable[[float], None],
) -> set[str]:
    request: dict[str, KeysAndAttributesUnionTypeDef] = {
        table: {
            "Keys": [{"pk": {"S": url}, "sk": {"S": RESULT_SORT_KEY}} for url in urls],
            # status is a DynamoDB reserved word.
            "ProjectionExpression": "pk, #status",
            "ExpressionAttributeNames": {"#status": "status"},
        }
    }
    done: set[str] = set()
    for attempt in range(UNPROCESSED_RETRIES + 1):
        if attempt:
            sleep(UNPROCESSED_BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            response = dynamodb.batch_get_item(RequestItems=request)
        except (ClientError, BotoCoreError) as exc:
            raise DoneLookupFailed(f"BatchGetItem on {table} failed: {exc}") from exc
        for item in response.get("Responses", {}).get(table, []):
            if item.get("status", {}).get("S") == DONE_STATUS:
                done.add(item["pk"]["S"])
        unprocessed: Mapping[str, KeysAndAttributesOutputTypeDef] = response.get(
            "UnprocessedKeys", {}
        )
        if table not in unprocessed or not unprocessed[table]["Keys"]:
            return done
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
