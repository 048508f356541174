"""Event target: stores every event it receives, and fails on request (async retries)."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


class RecordingRefused(Exception):
    """The event asked the recorder to fail: EventBridge's asynchronous invocation retries."""


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(os.environ["ITEMS_TABLE"])
    refuse = isinstance(event, dict) and event.get("fail") is True
    prefix = "attempt" if refuse else "recorded"
    table.put_item(Item={"pk": f"{prefix}-{context.aws_request_id}", "body": json.dumps(event)})
    if refuse:
        raise RecordingRefused("the event asked to fail")
    return {"recorded": context.aws_request_id}
