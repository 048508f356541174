"""Queue worker: stores each message, reports the ones marked to fail as batch item failures."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(os.environ["ITEMS_TABLE"])
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        if body.get("crash"):
            raise RuntimeError("crash requested")
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        table.put_item(
            Item={
                "pk": f"msg-{body['id']}",
                "receive_count": int(record["attributes"]["ApproximateReceiveCount"]),
            }
        )
    return {"batchItemFailures": failures}
