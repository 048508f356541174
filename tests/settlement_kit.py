"""Records of what happened, written as the pipeline writes them, for the settlement's tests
(the chaos run's and the demo's accounting): the classifier's record and a workflow letter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tweetlens.accounting import ClassifierRecord
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter

CATS_QUEUE = "arn:aws:sqs:us-east-1:123456789012:CatsQueue"


def classifier_record(message_id: str, outcome: str, execution: str = "") -> ClassifierRecord:
    """The classifier's ``record_outcome`` of one message of the cats queue."""
    return ClassifierRecord(
        version=1,
        message_id=message_id,
        outcome=outcome,
        event_source_arn=CATS_QUEUE,
        route="cats",
        execution=execution,
    )


def workflow_letter(
    execution: str, message: Mapping[str, Any], error: str = "ImageNotFound", *, copy: int = 0
) -> DeadLetter:
    """The workflow dead letter of ``execution``, carrying ``message`` (``copy``: which of
    several letters of one execution, each its own SQS message)."""
    return DeadLetter(
        queue=WORKFLOW_DLQ,
        message_id=f"letter-{execution[-4:]}-{copy}",
        receipt_handle="r",
        body=json.dumps({"execution": execution, "message": dict(message)}),
        error=error,
        reason="gone",
        route="cats",
        receive_count=1,
    )


# A body the classifier rejects (InvalidMessage: no url), as it would sit on the cats queue.
REJECTED_BODY = {"post_id": "5", "route": "cats"}


def rejection_letter(message_id: str, *, letter_id: str = "") -> DeadLetter:
    """The cats DLQ letter the classifier sent when it rejected ``message_id``: a new SQS
    message (``letter_id``, by default one of its own) naming it in ``source_message_id``."""
    return DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id=letter_id or f"letter-of-{message_id}",
        receipt_handle="r",
        body=json.dumps(REJECTED_BODY),
        error="InvalidMessage",
        reason="url: Field required",
        route="cats",
        receive_count=1,
        source_message_id=message_id,
    )
