"""Reading classified results back: by label through the ByLabel index, never a table scan."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tweetlens_naming import RESULT_SORT_KEY

RESULTS_TABLE = "ResultsTable"
BY_LABEL_INDEX = "ByLabel"
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class LabelHit:
    url: str
    label: str
    confidence: float
    post_id: str
    route: str


@dataclass(frozen=True)
class ImageResult:
    url: str
    status: str
    route: str
    post_id: str
    text: str
    hashtags: list[str]
    labels: list[tuple[str, float]]
    image_key: str
    error: str
    cause: str
    # The ClassifyImage execution that wrote it: `tweetlens trace <execution>` draws it.
    execution: str


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (Decimal, int, float, str)) else 0.0


def _label_query(table: str, label: str, min_confidence: float) -> dict[str, Any]:
    return {
        "TableName": table,
        "IndexName": BY_LABEL_INDEX,
        "KeyConditionExpression": "#label = :label AND #confidence >= :min",
        "ExpressionAttributeNames": {"#label": "label", "#confidence": "confidence"},
        "ExpressionAttributeValues": {
            ":label": {"S": label},
            ":min": {"N": str(min_confidence)},
        },
        "ScanIndexForward": False,
    }


def _label_hit(raw: dict[str, Any]) -> LabelHit:
    item = _plain(raw)
    return LabelHit(
        url=str(item["pk"]),
        label=str(item["label"]),
        confidence=_number(item["confidence"]),
        post_id=str(item.get("post_id", "")),
        route=str(item.get("route", "")),
    )


def images_with_label(
    dynamodb: Any, table: str, label: str, min_confidence: float = 0.0
) -> list[LabelHit]:
    """Every image labelled `label` with at least `min_confidence`, most confident first."""
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(**_label_query(table, label, min_confidence))
    return [_label_hit(raw) for page in pages for raw in page["Items"]]


@dataclass(frozen=True)
class Page[T]:
    """One page of a query; ``next_key`` (DynamoDB's LastEvaluatedKey) starts the next one."""

    items: list[T]
    next_key: dict[str, Any] | None


def label_page(
    dynamodb: Any,
    table: str,
    label: str,
    min_confidence: float = 0.0,
    *,
    limit: int = 24,
    start_key: dict[str, Any] | None = None,
) -> Page[LabelHit]:
    """One page of ``images_with_label``: at most ``limit`` hits, after ``start_key``."""
    query = _label_query(table, label, min_confidence)
    if start_key is not None:
        query["ExclusiveStartKey"] = start_key
    response = dynamodb.query(**query, Limit=limit)
    return Page(
        items=[_label_hit(raw) for raw in response["Items"]],
        next_key=response.get("LastEvaluatedKey"),
    )


def to_image_result(raw: dict[str, Any]) -> ImageResult:
    item = _plain(raw)
    labels = [
        (str(label.get("name", "")), _number(label.get("confidence", 0)))
        for label in item.get("labels", [])
    ]
    return ImageResult(
        url=str(item["pk"]),
        status=str(item.get("status", "")),
        route=str(item.get("route", "")),
        post_id=str(item.get("post_id", "")),
        text=str(item.get("text", "")),
        hashtags=[str(tag) for tag in item.get("hashtags", [])],
        labels=labels,
        image_key=str(item.get("image_key", "")),
        error=str(item.get("error", "")),
        cause=str(item.get("cause", "")),
        execution=str(item.get("execution", "")),
    )


def all_results(dynamodb: Any, table: str) -> list[ImageResult]:
    """Every result item. A full scan: meant for the demo's small table and the report."""
    results: list[ImageResult] = []
    paginator = dynamodb.get_paginator("scan")
    pages = paginator.paginate(
        TableName=table,
        FilterExpression="sk = :result",
        ExpressionAttributeValues={":result": {"S": "RESULT"}},
    )
    for page in pages:
        results.extend(to_image_result(raw) for raw in page["Items"])
    return sorted(results, key=lambda result: result.url)


def done_per_route(dynamodb: Any, table: str) -> dict[str, int]:
    """Route → images classified (RESULT items of status DONE): one per image, whichever run
    classified it. A full scan of the RESULT items, reading only their route."""
    done: dict[str, int] = {}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="sk = :result AND #status = :done",
        ProjectionExpression="#route",
        ExpressionAttributeNames={"#status": "status", "#route": "route"},
        ExpressionAttributeValues={":result": {"S": "RESULT"}, ":done": {"S": "DONE"}},
    )
    for page in pages:
        for raw in page["Items"]:
            route = str(_plain(raw).get("route", ""))
            done[route] = done.get(route, 0) + 1
    return done


def results_page(
    dynamodb: Any, table: str, *, limit: int = 24, start_key: dict[str, Any] | None = None
) -> Page[ImageResult]:
    """About ``limit`` result items after ``start_key``, in the table's order (a scan).

    Label items share the table, so a scan step reads more items than it keeps; steps go on
    until ``limit`` results are found, and the last step's key resumes exactly after them (a
    page may then hold a few more than ``limit``).
    """
    found: list[ImageResult] = []
    next_key = start_key
    while True:
        scan: dict[str, Any] = {
            "TableName": table,
            "FilterExpression": "sk = :result",
            "ExpressionAttributeValues": {":result": {"S": "RESULT"}},
            # Each image has one result item and one item per label (up to 10 by default).
            "Limit": limit * 4,
        }
        if next_key is not None:
            scan["ExclusiveStartKey"] = next_key
        response = dynamodb.scan(**scan)
        found.extend(to_image_result(raw) for raw in response["Items"])
        next_key = response.get("LastEvaluatedKey")
        if next_key is None or len(found) >= limit:
            return Page(items=found, next_key=next_key)


BATCH_GET_KEYS = 100
BATCH_GET_ROUNDS = 8


def results_for(dynamodb: Any, table: str, urls: list[str]) -> dict[str, ImageResult]:
    """The result items of ``urls`` (BatchGetItem); a URL without one is left out."""
    found: dict[str, ImageResult] = {}
    unique = list(dict.fromkeys(urls))
    for start in range(0, len(unique), BATCH_GET_KEYS):
        chunk = unique[start : start + BATCH_GET_KEYS]
        keys = [{"pk": {"S": url}, "sk": {"S": RESULT_SORT_KEY}} for url in chunk]
        request: dict[str, Any] = {table: {"Keys": keys}}
        # Unprocessed keys (throttling) are asked for again; a bounded number of times.
        for attempt in range(BATCH_GET_ROUNDS):
            if attempt:
                time.sleep(min(1.0, 0.05 * 2**attempt))
            response = dynamodb.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table, []):
                result = to_image_result(raw)
                found[result.url] = result
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
    return found
