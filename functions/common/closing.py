"""Closing an execution that did not succeed: its claim marked FAILED, its dead letter.

Shared by ExecutionCloserFunction (Standard executions, from status-change events and the
sweep) and ClassifierFunction (Express executions, whose synchronous result it receives and
which Step Functions can neither describe nor report): one letter shape and one claim rule.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from common.messages import PhotoMessage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RESULT_SORT_KEY = "RESULT"
# A Lambda error's Cause carries a stack trace; a letter keeps enough to read the reason.
MAX_CAUSE_CHARS = 4_096


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"


class DetectedBy(StrEnum):
    STATUS_CHANGE_EVENT = "status-change-event"
    LEASE_SWEEP = "lease-sweep"
    # The classifier waited for an Express execution (StartSyncExecution) and got its result.
    SYNC_RESULT = "sync-result"


class WorkflowDeadLetter(BaseModel):
    """Body of a message on WorkflowDeadLetterQueue (docs/architecture.md)."""

    # Only an execution that failed is given a letter (the closer closing one, the classifier
    # under EXPRESS): pydantic builds the validator when the first letter is written, not at
    # every cold start of both functions (README, Cold start).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # The route message when it could be recovered (replayable), else the raw input.
    message: dict[str, Any] | None = None
    input: Any = None
    error: dict[str, str]
    execution: str
    status: ExecutionStatus
    # The last state entered; None when nothing says (an Express result carries no history).
    failed_state: str | None
    detected_by: DetectedBy


def mark_failed(
    dynamodb: DynamoDBClient,
    table: str,
    message: PhotoMessage,
    *,
    execution_arn: str,
    error: str,
    cause: str,
) -> bool:
    """Mark the URL's claim FAILED if ``execution_arn`` still owns it; False if it does not.

    FAILED lets the next execution for the URL take the claim over at once, and drops the
    claim from the ``OpenClaims`` index so the closer's sweep no longer looks at it.
    """
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": message.url}, "sk": {"S": RESULT_SORT_KEY}},
            # The post's fields too, so a FAILED result reads like a DONE one.
            UpdateExpression=(
                "SET #status = :failed, #error = :error, #cause = :cause, "
                "post_id = :post_id, media_key = :media_key, #text = :text, "
                "hashtags = :hashtags, #route = :route REMOVE open_claim"
            ),
            ConditionExpression="#execution = :me AND #status = :in_progress",
            ExpressionAttributeNames={
                "#status": "status",
                "#execution": "execution",
                "#error": "error",
                "#cause": "cause",
                "#text": "text",
                "#route": "route",
            },
            ExpressionAttributeValues={
                ":failed": {"S": "FAILED"},
                ":in_progress": {"S": "IN_PROGRESS"},
                ":me": {"S": execution_arn},
                ":error": {"S": error},
                ":cause": {"S": cause[:MAX_CAUSE_CHARS]},
                ":post_id": {"S": message.post_id},
                ":media_key": {"S": message.media_key},
                ":text": {"S": message.text},
                ":hashtags": {"L": [{"S": tag} for tag in message.hashtags]},
                ":route": {"S": message.route},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # Never claimed (it failed first), already closed, or taken over by a newer
        # execution: the result item is not this execution's to change.
        return False
    return True
