"""The seed's original consumer, as the benchmark's baseline: serial, one message at a time.

It keeps the original's flow (receive, skip a known URL, download, DetectLabels with the
bytes, store, delete) and its cost profile, with two of the original's defects mended so the
baseline is not an open fetcher: https only, from allow-listed hosts, with a size cap. It
stops when a receive comes back empty, where the original polled until its timeout: the same
throughput, without idling a minute at the end of the bench.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # DetectLabels' limit for image bytes
DOWNLOAD_TIMEOUT_SECONDS = 10
# Stop receiving while this much of the invocation is left, so a message is never cut short.
STOP_BEFORE_END_MS = 10_000

QUEUE_URL = os.environ["QUEUE_URL"]
RESULTS_TABLE = os.environ["RESULTS_TABLE"]
ALLOWED_HOSTS = frozenset(h.strip() for h in os.environ["ALLOWED_IMAGE_HOSTS"].split(",") if h)
MAX_LABELS = int(os.environ["MAX_LABELS"])
MIN_CONFIDENCE = float(os.environ["MIN_CONFIDENCE"])

sqs = boto3.client("sqs")
dynamodb = boto3.client("dynamodb")
rekognition = boto3.client("rekognition")


class RefusedUrl(Exception):
    """The URL is not https or not from an allowed host."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    counts = {"classified": 0, "known": 0, "failed": 0}
    while context.get_remaining_time_in_millis() > STOP_BEFORE_END_MS:
        messages = sqs.receive_message(
            QueueUrl=QUEUE_URL, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                outcome = handle(json.loads(message["Body"]))
            except Exception as exc:
                # Left on the queue: it comes back after the visibility timeout, and moves to
                # the dead-letter queue after 5 receives.
                print(json.dumps({"message": "failed", "error": type(exc).__name__}))
                counts["failed"] += 1
                continue
            sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
            counts[outcome] += 1
    return counts


def handle(body: dict[str, Any]) -> str:
    url = str(body["url"])
    known = dynamodb.get_item(TableName=RESULTS_TABLE, Key={"url": {"S": url}})
    if "Item" in known:
        return "known"
    image = download(url)
    labels = rekognition.detect_labels(
        Image={"Bytes": image}, MaxLabels=MAX_LABELS, MinConfidence=MIN_CONFIDENCE
    )["Labels"]
    dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "url": {"S": url},
            "text": {"S": str(body.get("text", ""))},
            "hashtags": {"L": [{"S": str(tag)} for tag in body.get("hashtags", [])]},
            "labels": {
                "L": [
                    {"M": {"name": {"S": label["Name"]}, "score": {"N": str(label["Confidence"])}}}
                    for label in labels
                ]
            },
            "classified_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        },
    )
    return "classified"


def download(url: str) -> bytes:
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.netloc not in ALLOWED_HOSTS:
        raise RefusedUrl(url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310 - https and allow-listed above
        image: bytes = response.read(MAX_IMAGE_BYTES + 1)
    if len(image) > MAX_IMAGE_BYTES:
        raise ValueError(f"image over {MAX_IMAGE_BYTES} bytes")
    return image
