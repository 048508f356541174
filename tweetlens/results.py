"""Reading classified results back: by label through the ByLabel index, never a table scan."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

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


def images_with_label(
    dynamodb: Any, table: str, label: str, min_confidence: float = 0.0
) -> list[LabelHit]:
    """Every image labelled `label` with at least `min_confidence`, most confident first."""
    hits: list[LabelHit] = []
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        IndexName=BY_LABEL_INDEX,
        KeyConditionExpression="#label = :label AND #confidence >= :min",
        ExpressionAttributeNames={"#label": "label", "#confidence": "confidence"},
        ExpressionAttributeValues={":label": {"S": label}, ":min": {"N": str(min_confidence)}},
        ScanIndexForward=False,
    )
    for page in pages:
        for raw in page["Items"]:
            item = _plain(raw)
            hits.append(
                LabelHit(
                    url=str(item["pk"]),
                    label=str(item["label"]),
                    confidence=_number(item["confidence"]),
                    post_id=str(item.get("post_id", "")),
                    route=str(item.get("route", "")),
                )
            )
    return hits


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
