"""The search checkpoint in CheckpointsTable: how far the producer has enqueued posts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class CheckpointConflict(Exception):
    """Another producer run moved the checkpoint while this one was reading."""


class CheckpointError(Exception):
    """The checkpoint could not be read or written."""


class Checkpoint(BaseModel):
    """``since_id``: newest post fully enqueued. The rest describe an unfinished run:
    ``next_token`` is the next page to read, ``newest_id`` the newest post of the run's first
    page, ``oldest_id`` the oldest post enqueued so far (the page at ``next_token`` holds older
    ones), and ``unreadable_reads`` how many runs in a row found that page unreadable."""

    model_config = ConfigDict(frozen=True)

    since_id: str | None = None
    next_token: str | None = None
    newest_id: str | None = None
    oldest_id: str | None = None
    unreadable_reads: int = 0
    updated_at: str | None = None


_STRING_ATTRIBUTES = ("since_id", "next_token", "newest_id", "oldest_id", "updated_at")


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class CheckpointStore:
    """Reads and conditionally writes one checkpoint item."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        checkpoint_id: str,
        *,
        clock: Callable[[], str] = _utc_now,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._id = checkpoint_id
        self._clock = clock

    def load(self) -> Checkpoint:
        try:
            response = self._dynamodb.get_item(
                TableName=self._table, Key={"id": {"S": self._id}}, ConsistentRead=True
            )
        except ClientError as error:
            raise CheckpointError(f"cannot read checkpoint {self._id}: {error}") from error
        item = response.get("Item", {})
        reads = item.get("unreadable_reads", {}).get("N")
        return Checkpoint(
            **{
                name: value["S"]
                for name in _STRING_ATTRIBUTES
                if (value := item.get(name)) is not None and "S" in value
            },
            unreadable_reads=int(reads) if reads is not None else 0,
        )

    def save(
        self,
        previous: Checkpoint,
        *,
        since_id: str | None,
        next_token: str | None,
        newest_id: str | None,
        oldest_id: str | None = None,
        unreadable_reads: int = 0,
    ) -> Checkpoint:
        """Replace the checkpoint, but only if nobody wrote it since ``previous`` was read.

        Schedules can overlap by a few seconds; the condition keeps a slow run from moving
        the checkpoint back over a faster one's progress.
        """
        saved = Checkpoint(
            since_id=since_id,
            next_token=next_token,
            newest_id=newest_id,
            oldest_id=oldest_id,
            unreadable_reads=unreadable_reads,
            updated_at=self._clock(),
        )
        item: dict[str, AttributeValueTypeDef] = {"id": {"S": self._id}}
        for name in _STRING_ATTRIBUTES:
            if (value := getattr(saved, name)) is not None:
                item[name] = {"S": value}
        if unreadable_reads:
            item["unreadable_reads"] = {"N": str(unreadable_reads)}
        # ALL_OLD: a refused write returns the item its condition read, so a write whose
        # earlier attempt committed (botocore retrying after a lost answer) is told from
        # another run's write without a further call.
        try:
            if previous.updated_at is None:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(id)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            else:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="updated_at = :previous",
                    ExpressionAttributeValues={":previous": {"S": previous.updated_at}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                # The stored item equal to this one, updated_at (this save's clock, to the
                # microsecond) included, is this save's own write: done, not a conflict.
                if error.response.get("Item") == item:
                    return saved
                raise CheckpointConflict(
                    f"checkpoint {self._id} changed since {previous.updated_at}"
                ) from error
            raise CheckpointError(f"cannot write checkpoint {self._id}: {error}") from error
        return saved
