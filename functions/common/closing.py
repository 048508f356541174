"""Closing an execution that did not succeed: its claim marked FAILED, its dead letter.

Shared by ExecutionCloserFunction (Standard executions, from status-change events and the
sweep) and ClassifierFunction (Express executions, whose synchronous result it receives and
which Step Functions can neither describe nor report): one letter shape and one claim rule.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from common.messages import PhotoMessage
from tweetlens_naming import RESULT_SORT_KEY as RESULT_SORT_KEY  # noqa: PLC0414

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

# A Lambda error's Cause carries a stack trace; a letter keeps enough to read the reason.
MAX_CAUSE_CHARS = 4_096
# The error a claim is closed with when its lease expired and nothing else says how its
# execution ended: the closer's sweep writes it, the EXPRESS classifier reads it.
LEASE_EXPIRED_ERROR = "LeaseExpired"
# SQS refuses a message over 256 KiB (body and attributes; letters carry no attributes):
# a letter over it would be refused at every retry, so it is cut to fit.
MAX_LETTER_BYTES = 256 * 1024
# SQS accepts only #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF in a message
# body and in a String attribute. Written as the few code points outside that set: the negated
# class of the accepted ranges took 6 ms of CPU to compile at every cold start, this one under
# 1 ms (tests/unit/classifier pins the two as equal).
NOT_SQS_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sqs_safe(text: str) -> str:
    """``text`` with every character SQS refuses replaced by "?"."""
    return NOT_SQS_CHARS.sub("?", text)


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

    def body(self) -> str:
        """The letter as an SQS message body that SQS accepts, whatever its free text holds.

        Encoded with ``json`` rather than pydantic, which refuses to encode a lone surrogate
        (a JSON input may carry one as an escape): control characters come out escaped, and the
        characters SQS refuses that are left (lone surrogates, U+FFFE, U+FFFF; only ever inside
        strings, the JSON around them is ASCII) become "?". A raw input too large for a
        message is cut, as text, to what fits; the route message and the capped cause always
        fit.
        """
        letter = self.model_dump(mode="json")
        while True:
            text = sqs_safe(json.dumps(letter, ensure_ascii=False, separators=(",", ":")))
            excess = len(text.encode("utf-8")) - MAX_LETTER_BYTES
            if excess <= 0 or not letter["input"]:
                return text
            raw = letter["input"]
            raw = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
            raw_bytes = len(sqs_safe(json.dumps(raw, ensure_ascii=False)).encode("utf-8"))
            # Cut in proportion to the bytes it must lose (one pass when its characters are
            # alike), and by one character at least so the loop ends.
            keep = len(raw) * max(0, raw_bytes - excess) // raw_bytes
            letter["input"] = raw[: min(keep, len(raw) - 1)]


def mark_failed(
    dynamodb: DynamoDBClient,
    table: str,
    message: PhotoMessage,
    *,
    execution_arn: str,
    error: str,
    cause: str,
    ended: tuple[ExecutionStatus, str] | None = None,
    reservation_token: str | None = None,
) -> bool:
    """Mark the URL's claim FAILED if ``execution_arn`` still owns it; False if it does not.

    ``reservation_token`` narrows that to the one reservation call that wrote it (the EXPRESS
    classifier releasing a reservation whose write went unanswered), not another delivery's
    reservation of the same message.

    FAILED lets the next execution for the URL take the claim over at once, and drops the
    claim from the ``OpenClaims`` index so the closer's sweep no longer looks at it.

    ``ended`` is how the execution ended and its ARN, recorded (``ended_status``,
    ``ended_execution``) by the EXPRESS classifier, whose letter for the claim may have to be
    sent later from the claim alone: the error does not tell a task's ``States.Timeout``
    (FAILED) from the execution's (TIMED_OUT), and ``execution_arn`` is the reservation when
    the execution failed before its Claim Image state. Without it (the closer) both are
    removed, so none is left from an earlier execution of the URL.
    """
    values: dict[str, AttributeValueTypeDef] = {}
    if ended is None:
        ended_update = " REMOVE open_claim, ended_status, ended_execution"
    else:
        ended_update = ", ended_status = :ended_status, ended_execution = :ended_execution"
        ended_update += " REMOVE open_claim"
        values = {
            ":ended_status": {"S": ended[0].value},
            ":ended_execution": {"S": ended[1]},
        }
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": message.url}, "sk": {"S": RESULT_SORT_KEY}},
            # The post's fields too, so a FAILED result reads like a DONE one.
            UpdateExpression=(
                "SET #status = :failed, #error = :error, #cause = :cause, "
                "post_id = :post_id, media_key = :media_key, #text = :text, "
                "hashtags = :hashtags, #route = :route" + ended_update
            ),
            ConditionExpression="#execution = :me AND #status = :in_progress"
            + ("" if reservation_token is None else " AND reservation_token = :token"),
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
                **values,
                **({} if reservation_token is None else {":token": {"S": reservation_token}}),
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # Never claimed (it failed first), already closed, or taken over by a newer
        # execution: the result item is not this execution's to change.
        return False
    return True
