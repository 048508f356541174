"""Bad input at the ClassifyImage state machine, run for real with the real fetch handler.

Two tables: URLs the classifier lets through (the message contract does not know the image
host allow-list) end as BlockedUrl in the workflow DLQ; execution inputs that break the
ClassifyRequest contract (only a hand-started execution can carry one: the classifier
validates every input) are dead-lettered as they came by the Check Input state, each with the
reason it gives, and fail the execution with InvalidExecutionInput.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from common.messages import ClassifyRequest, PhotoMessage
from tests.conftest import EVENTS_DIR
from tests.unit.statemachine.harness import (
    ACCOUNT_ID,
    REGION,
    RESULTS_TABLE,
    STATE_MACHINE_NAME,
    Workflow,
)
from tests.unit.statemachine.test_classify_image_workflow import (
    dead_letter,
    failed_item,
    lambda_cause,
)

NOW = 1_732_700_000
LEASE_SECONDS = 900
HOSTS = "bad_input_classifier_sqs_hosts.json"
INPUTS = "bad_input_state_machine_inputs.json"


@dataclass(frozen=True)
class HostRow:
    case: str
    record: int  # index in events/bad_input_classifier_sqs_hosts.json
    reason: str  # BlockedUrl's message, which is the DLQ cause's errorMessage


@dataclass(frozen=True)
class InputRow:
    """An execution input, the check that rejected it and the reason it gave."""

    case: str  # key in events/bad_input_state_machine_inputs.json
    rejected_by: str
    cause: str


HOST_TABLE = [
    HostRow(
        "metadata IP literal",
        0,
        "host '169.254.169.254' is an IP address literal (169.254.169.254); only host names "
        "are allowed",
    ),
    HostRow(
        "decimal IP literal",
        1,
        "host '2130706433' is an IP address literal (127.0.0.1); only host names are allowed",
    ),
    HostRow(
        "IPv4-mapped IPv6 literal",
        2,
        "host is an IPv6 address literal; only host names are allowed",
    ),
    HostRow(
        "look-alike suffix host",
        3,
        "host 'pbs.twimg.com.evil.example' is not on the image host allow-list",
    ),
    HostRow(
        "IDN homograph host",
        4,
        "host 'xn--bs-kmc.twimg.com' is not on the image host allow-list",
    ),
    HostRow(
        "punycode homograph host",
        5,
        "host 'xn--bs-kmc.twimg.com' is not on the image host allow-list",
    ),
    HostRow(
        "allowed host, other port",
        6,
        "host 'pbs.twimg.com:8443' is not on the image host allow-list",
    ),
    HostRow(
        "host not on the allow-list",
        7,
        "host 'evil.example' is not on the image host allow-list",
    ),
]

# Without Check Input these failed with States.Runtime, which Catch [States.ALL] does not catch:
# nothing reached the workflow DLQ and only the failed-executions alarm told. Now every one is
# dead-lettered as it came, with the reason, before anything is claimed.
INPUT_TABLE = [
    InputRow(
        "empty_object",
        "Invalid Message",
        "message is missing or not an object; the execution input must be a ClassifyRequest: "
        '{"message": {url, post_id, media_key, text, hashtags, route, attempt}, '
        '"requested_at", "lease_expires_at", "source_queue_arn"}',
    ),
    InputRow(
        "no_message",
        "Invalid Message",
        "message is missing or not an object; the execution input must be a ClassifyRequest: "
        '{"message": {url, post_id, media_key, text, hashtags, route, attempt}, '
        '"requested_at", "lease_expires_at", "source_queue_arn"}',
    ),
    InputRow(
        "message_without_hashtags",
        "Invalid Hashtags",
        "message.hashtags is missing or not a list of strings",
    ),
    InputRow(
        "message_without_url",
        "Invalid Url",
        "message.url is missing or not an https URL string",
    ),
    InputRow(
        "url_not_a_string",
        "Invalid Url",
        "message.url is missing or not an https URL string",
    ),
]


def host_request(index: int) -> ClassifyRequest:
    """The execution input the classifier builds for one record of the hosts sample."""
    record = json.loads((EVENTS_DIR / HOSTS).read_text(encoding="utf-8"))["Records"][index]
    return ClassifyRequest(
        message=PhotoMessage.model_validate_json(record["body"]),
        requested_at=NOW,
        lease_expires_at=NOW + LEASE_SECONDS,
        source_queue_arn=record["eventSourceARN"],
    )


def test_tables_cover_every_sample() -> None:
    # GIVEN the samples WHEN compared with the tables THEN each has exactly one row
    hosts = json.loads((EVENTS_DIR / HOSTS).read_text(encoding="utf-8"))["Records"]
    assert [row.record for row in HOST_TABLE] == list(range(len(hosts)))
    inputs = json.loads((EVENTS_DIR / INPUTS).read_text(encoding="utf-8"))
    assert sorted(row.case for row in INPUT_TABLE) == sorted(inputs)


@pytest.mark.parametrize("row", HOST_TABLE, ids=[row.case for row in HOST_TABLE])
def test_url_off_the_allow_list_ends_as_blocked_url_in_the_workflow_dlq(
    row: HostRow, workflow: Workflow
) -> None:
    # GIVEN the execution the classifier started for a URL it could not judge
    request = host_request(row.record)

    # WHEN the execution runs
    result = workflow.run(request)

    # THEN the fetch function refused the URL before any DNS lookup or connection
    assert workflow.lambdas.error_payloads[-1]["errorType"] == "BlockedUrl"
    assert workflow.lambdas.error_payloads[-1]["errorMessage"] == row.reason
    assert len(workflow.lambdas.error_payloads) == 1
    assert workflow.host.requests == []
    assert workflow.retry_waits == []
    # AND the execution failed with BlockedUrl, the item is FAILED, the message dead-lettered
    cause = lambda_cause(workflow)
    assert (result.status, result.error, result.cause) == ("FAILED", "BlockedUrl", cause)
    assert workflow.result_item(request.message.url) == failed_item(request, "BlockedUrl", cause)
    assert workflow.dead_letters() == [dead_letter(request, "BlockedUrl", cause, "Fetch Image")]


@pytest.mark.parametrize("row", INPUT_TABLE, ids=[row.case for row in INPUT_TABLE])
def test_malformed_execution_input_is_dead_lettered_by_name(
    row: InputRow, workflow: Workflow
) -> None:
    # GIVEN an execution input that breaks the ClassifyRequest contract
    execution_input = json.loads((EVENTS_DIR / INPUTS).read_text(encoding="utf-8"))[row.case]

    # WHEN it is started by hand and runs
    result = workflow.run_raw(row.case, execution_input)

    # THEN the execution fails with InvalidExecutionInput and the reason, from the check
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "InvalidExecutionInput",
        row.cause,
    )
    assert workflow.states_entered(result.arn) == [
        "Check Input",
        row.rejected_by,
        "Reject Input",
        "Input Rejected",
    ]
    # AND the input reached the workflow DLQ as it came, with the reason
    assert workflow.dead_letters() == [
        {
            "input": execution_input,
            "error": {"Error": "InvalidExecutionInput", "Cause": row.cause},
            "execution": (
                f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:{row.case}"
            ),
            "failed_state": "Check Input",
        }
    ]
    # AND nothing was claimed and the fetch function never ran
    assert workflow.dynamodb.Table(RESULTS_TABLE).scan()["Items"] == []
    assert workflow.lambdas.error_payloads == []
    assert workflow.host.requests == []
