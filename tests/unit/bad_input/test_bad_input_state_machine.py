"""Bad input at the ClassifyImage state machine, run for real with the real fetch handler.

Two tables: URLs the classifier lets through (the message contract does not know the image
host allow-list) end as BlockedUrl, dead-lettered by the execution closer; execution inputs
that break the ClassifyRequest contract (only a hand-started execution can carry one: the
classifier validates every input, and the workflow does not validate it again) fail the
execution in its first state, and the closer dead-letters them as they came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from common.messages import ClassifyRequest, PhotoMessage
from execution_closer.closer import Closer
from execution_closer.models import CloseOutcome
from tests.conftest import EVENTS_DIR
from tests.unit.statemachine.harness import (
    ACCOUNT_ID,
    REGION,
    RESULTS_TABLE,
    STATE_MACHINE_NAME,
    Workflow,
)
from tests.unit.statemachine.test_classify_image_workflow import lambda_cause
from tests.unit.statemachine.test_execution_closer import ended_from

NOW = 1_732_700_000
LEASE_SECONDS = 900
HOSTS = "bad_input_classifier_sqs_hosts.json"
INPUTS = "bad_input_state_machine_inputs.json"


@dataclass(frozen=True)
class HostRow:
    case: str
    record: int  # index in events/bad_input_classifier_sqs_hosts.json
    reason: str  # BlockedUrl's message, which is the DLQ cause's errorMessage


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

INPUT_CASES = [
    "empty_object",
    "no_message",
    "message_without_hashtags",
    "message_without_url",
    "url_not_a_string",
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
    assert sorted(INPUT_CASES) == sorted(inputs)


@pytest.mark.parametrize("row", HOST_TABLE, ids=[row.case for row in HOST_TABLE])
def test_url_off_the_allow_list_ends_as_blocked_url_in_the_workflow_dlq(
    row: HostRow, workflow: Workflow, closer: Closer
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
    # AND the execution failed with BlockedUrl; closed, the item is FAILED and the message
    # dead-lettered with the reason
    cause = lambda_cause(workflow)
    assert (result.status, result.error, result.cause) == ("FAILED", "BlockedUrl", cause)
    assert closer.close(ended_from(workflow.status_change_event(result.arn))) is (
        CloseOutcome.DEAD_LETTERED
    )
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["error"], item["cause"]) == ("FAILED", "BlockedUrl", cause)
    assert workflow.dead_letters() == [
        {
            "message": request.message.model_dump(),
            "input": None,
            "error": {"Error": "BlockedUrl", "Cause": cause},
            "execution": result.arn,
            "status": "FAILED",
            "failed_state": "Fetch Image",
            "detected_by": "status-change-event",
        }
    ]


@pytest.mark.parametrize("case", INPUT_CASES)
def test_malformed_execution_input_is_dead_lettered_as_it_came(
    case: str, workflow: Workflow, closer: Closer
) -> None:
    # GIVEN an execution input that breaks the ClassifyRequest contract
    execution_input = json.loads((EVENTS_DIR / INPUTS).read_text(encoding="utf-8"))[case]

    # WHEN it is started by hand, runs, and its status-change event reaches the closer
    result = workflow.run_raw(case, execution_input)
    closer.close(ended_from(workflow.status_change_event(result.arn)))

    # THEN the execution failed in its first state, naming the path it could not find
    assert result.status == "FAILED"
    assert result.cause is not None
    assert "could not be found in the input" in result.cause
    assert workflow.states_entered(result.arn) == ["Claim Image"]
    # AND the input reached the workflow DLQ as it came, with the error and cause
    assert workflow.dead_letters() == [
        {
            "message": None,
            "input": execution_input,
            "error": {"Error": result.error, "Cause": result.cause},
            "execution": (
                f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:{STATE_MACHINE_NAME}:{case}"
            ),
            "status": "FAILED",
            "failed_state": "Claim Image",
            "detected_by": "status-change-event",
        }
    ]
    # AND nothing was claimed and the fetch function never ran
    assert workflow.dynamodb.Table(RESULTS_TABLE).scan()["Items"] == [
        item
        for item in workflow.dynamodb.Table(RESULTS_TABLE).scan()["Items"]
        if str(item["pk"]).startswith("EXECUTION#")
    ]
    assert workflow.lambdas.error_payloads == []
    assert workflow.host.requests == []
