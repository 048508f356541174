"""ClassifyImage, Check Input: a malformed execution input ends in the workflow DLQ, by name.

Only a hand-started execution can carry such an input (the classifier validates every one),
and without the check it would fail with States.Runtime, which no Catch sees. Each shape in
``events/state_machine_malformed_inputs.json`` must be dead-lettered as it came, with a reason
that names the field, fail the execution with ``InvalidExecutionInput`` and write nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.statemachine.harness import (
    ACCOUNT_ID,
    REGION,
    RESULTS_TABLE,
    STATE_MACHINE_NAME,
    Workflow,
    load_request,
)
from tests.unit.statemachine.test_classify_image_workflow import (
    CAT,
    HAPPY_STATES,
    serve_image,
)

MALFORMED = Path(__file__).resolve().parent / "events" / "state_machine_malformed_inputs.json"
ERROR = "InvalidExecutionInput"

MESSAGE = (
    "message is missing or not an object; the execution input must be a ClassifyRequest: "
    '{"message": {url, post_id, media_key, text, hashtags, route, attempt}, "requested_at", '
    '"lease_expires_at", "source_queue_arn"}'
)
URL = "message.url is missing or not an https URL string"
HASHTAGS = "message.hashtags is missing or not a list of strings"


@dataclass(frozen=True)
class Row:
    """A malformed input (key in the sample file), the state that names it, and the reason."""

    case: str
    rejected_by: str
    cause: str
    # Present hashtags are judged in the Check Hashtags branch, after every other field.
    by_hashtag_check: bool = False

    @property
    def states(self) -> list[str]:
        hashtag_check = ["Check Hashtags"] if self.by_hashtag_check else []
        return ["Check Input", *hashtag_check, self.rejected_by, "Reject Input", "Input Rejected"]


TABLE = [
    Row("input_is_an_array", "Invalid Message", MESSAGE),
    Row("input_is_a_string", "Invalid Message", MESSAGE),
    Row("empty_object", "Invalid Message", MESSAGE),
    Row("no_message", "Invalid Message", MESSAGE),
    Row("message_null", "Invalid Message", MESSAGE),
    Row("message_is_a_string", "Invalid Message", MESSAGE),
    Row("message_is_a_list", "Invalid Url", URL),
    Row("message_without_url", "Invalid Url", URL),
    Row("url_not_a_string", "Invalid Url", URL),
    Row("url_not_https", "Invalid Url", URL),
    Row("post_id_not_a_string", "Invalid Post Id", "message.post_id is missing or not a string"),
    Row(
        "message_without_media_key",
        "Invalid Media Key",
        "message.media_key is missing or not a string",
    ),
    Row("text_null", "Invalid Text", "message.text is missing or not a string"),
    Row("message_without_hashtags", "Invalid Hashtags", HASHTAGS),
    Row("hashtags_a_string", "Invalid Hashtags", HASHTAGS, by_hashtag_check=True),
    Row("hashtags_an_object", "Invalid Hashtags", HASHTAGS, by_hashtag_check=True),
    Row("hashtags_null", "Invalid Hashtags", HASHTAGS, by_hashtag_check=True),
    Row("hashtag_not_a_string", "Invalid Hashtags", HASHTAGS, by_hashtag_check=True),
    Row("message_without_route", "Invalid Route", "message.route is missing or not a string"),
    Row("attempt_a_string", "Invalid Attempt", "message.attempt is missing or not a number"),
    Row(
        "message_without_attempt",
        "Invalid Attempt",
        "message.attempt is missing or not a number",
    ),
    Row(
        "requested_at_a_string",
        "Invalid Requested At",
        "requested_at is missing or not a number (epoch seconds)",
    ),
    Row(
        "no_lease_expires_at",
        "Invalid Lease Expires At",
        "lease_expires_at is missing or not a number (epoch seconds)",
    ),
    Row(
        "source_queue_arn_null",
        "Invalid Source Queue Arn",
        "source_queue_arn is missing or not a string",
    ),
]


def malformed_inputs() -> dict[str, Any]:
    inputs: dict[str, Any] = json.loads(MALFORMED.read_text(encoding="utf-8"))
    return inputs


def test_table_covers_every_sample() -> None:
    # GIVEN the malformed inputs WHEN compared with the table THEN each has exactly one row
    assert sorted(row.case for row in TABLE) == sorted(malformed_inputs())


@pytest.mark.parametrize("row", TABLE, ids=[row.case for row in TABLE])
def test_malformed_input_is_dead_lettered_as_it_came(row: Row, workflow: Workflow) -> None:
    # GIVEN an execution input that breaks the ClassifyRequest contract
    execution_input = malformed_inputs()[row.case]
    name = row.case.replace("_", "-")

    # WHEN it is started by hand and runs
    result = workflow.run_raw(name, execution_input)

    # THEN the execution fails by name, with the reason, from the check
    assert (result.status, result.error, result.cause) == ("FAILED", ERROR, row.cause)
    assert workflow.states_entered(result.arn) == row.states
    # AND the input reached the workflow DLQ unchanged, with the reason
    assert workflow.dead_letters() == [
        {
            "input": execution_input,
            "error": {"Error": ERROR, "Cause": row.cause},
            "execution": (
                f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:{name}"
            ),
            "failed_state": "Check Input",
        }
    ]
    # AND nothing was claimed, fetched or labelled
    assert workflow.dynamodb.Table(RESULTS_TABLE).scan()["Items"] == []
    assert workflow.lambdas.error_payloads == []
    assert workflow.host.requests == []
    assert workflow.rekognition.requests == []


def test_dead_letter_queue_refusing_the_input_still_fails_the_execution_by_name(
    workflow: Workflow,
) -> None:
    # GIVEN a malformed input and a dead-letter queue that no longer exists
    workflow.sqs.delete_queue(QueueUrl=workflow.dead_letter_queue_url)

    # WHEN it is started by hand and runs
    result = workflow.run_raw("no-dead-letter-queue", {})

    # THEN the execution still fails with the named error and the reason
    assert (result.status, result.error, result.cause) == ("FAILED", ERROR, MESSAGE)
    assert workflow.states_entered(result.arn) == [
        "Check Input",
        "Invalid Message",
        "Reject Input",
        "Input Rejected",
    ]


def test_empty_text_and_no_hashtags_are_valid_and_classified(workflow: Workflow) -> None:
    # GIVEN a photo posted with no text and no hashtag (the contract allows both)
    cat = load_request(CAT)
    request = cat.model_copy(
        update={"message": cat.message.model_copy(update={"text": "", "hashtags": []})}
    )
    serve_image(workflow)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN it passes the check and is classified like any other
    assert result.status == "SUCCEEDED"
    assert workflow.states_entered(result.arn) == HAPPY_STATES
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["text"], item["hashtags"]) == ("DONE", "", [])
    assert workflow.dead_letters() == []
