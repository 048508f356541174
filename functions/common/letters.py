"""Send a dead letter at most once per cause, however often its trigger is delivered.

SQS batches, EventBridge events and Lambda retries all deliver at least once, and a standard
SQS queue keeps every copy it is sent. A marker item per cause (an execution, a rejected SQS
message) records ``PENDING`` before the send and ``SENT`` after it, so a repeated trigger skips
a letter already sent. A sender that dies between the send and the ``SENT`` mark sends again
on its retry: the one window left, kept as small as two calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MARKER_SORT_KEY = "DEAD_LETTER"
PENDING = "PENDING"
SENT = "SENT"


@dataclass(frozen=True)
class LetterMarkers:
    """Markers in a table keyed ``pk`` (S) + ``sk`` (S), with TTL attribute ``expires_at``."""

    dynamodb: DynamoDBClient
    table: str
    days: int
    clock: Callable[[], float] = time.time

    def already_sent(self, cause: str) -> bool:
        """Record that a letter for ``cause`` is about to be sent; True if one already was."""
        expires_at = int(self.clock()) + self.days * 86_400
        got = self.dynamodb.update_item(
            TableName=self.table,
            Key=self._key(cause),
            UpdateExpression="SET letter = if_not_exists(letter, :pending), expires_at = :expires",
            ExpressionAttributeValues={
                ":pending": {"S": PENDING},
                ":expires": {"N": str(expires_at)},
            },
            ReturnValues="ALL_NEW",
        )
        return got.get("Attributes", {}).get("letter", {}).get("S") == SENT

    def sent(self, cause: str) -> bool:
        """Whether a letter for ``cause`` was sent, without recording anything."""
        got = self.dynamodb.get_item(
            TableName=self.table,
            Key=self._key(cause),
            ProjectionExpression="letter",
            ConsistentRead=True,
        )
        return got.get("Item", {}).get("letter", {}).get("S") == SENT

    def mark_sent(self, cause: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table,
            Key=self._key(cause),
            UpdateExpression="SET letter = :sent",
            ExpressionAttributeValues={":sent": {"S": SENT}},
        )

    @staticmethod
    def _key(cause: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": cause}, "sk": {"S": MARKER_SORT_KEY}}
