"""With `up --console` the Overview settles each message from SQS's record of what it accepted:
a message the Dead letters page sends back is the message whose letter it was, not a new one
published (found by review: it was counted published twice and its first message lost).

The console's own redrive (POST /dead-letters/redrive) sends the letters back; the test takes
what it sent off the route queue and logs the classifier's record of it, as the pipeline would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.console.console_testkit import (
    ORIGIN,
    FakeCloud,
    Stack,
    client_of,
    console_app,
    csrf_token,
    photo_message,
    workflow_letter,
)
from tests.unit.console.test_console_express import express_machine
from tweetlens import demo
from tweetlens.console import CloudActivity, ConsoleData
from tweetlens.console.data import Overview, overview
from tweetlens.dlq import REDRIVEN_FROM_ATTRIBUTE

URL = "https://localhost:8443/media/cat.jpg"
CATS_ARN = "arn:aws:sqs:us-east-1:123456789012:cats"


def _record(message_id: str, outcome: str, execution: str = "") -> dict[str, Any]:
    """The classifier's log line for one record (its ``record_outcome``, version 1)."""
    return {
        "message": "Record processed",
        "record_outcome": {
            "version": 1,
            "message_id": message_id,
            "outcome": outcome,
            "route": "cats",
            "event_source_arn": CATS_ARN,
            "execution": execution,
        },
    }


def _redrive(client: FlaskClient) -> None:
    """Press "Send back all" on the Dead letters page."""
    answer = client.post(
        "/dead-letters/redrive", data={"csrf_token": csrf_token(client)}, headers={"Origin": ORIGIN}
    )
    assert answer.status_code == 303


def _take(stack: Stack) -> tuple[str, str, dict[str, Any]]:
    """The one message on the cats queue, taken off it: its id, its redriven_from, its body."""
    queue = stack.deployed.resources["CatsQueue"]
    sqs = stack.client("sqs")
    (message,) = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    tag = message["MessageAttributes"][REDRIVEN_FROM_ATTRIBUTE]["StringValue"]
    return message["MessageId"], tag, json.loads(message["Body"])


def _moved_by_redrive_policy(stack: Stack) -> None:
    """The classifier failed on the cats queue's message on every receive: SQS moves it."""
    for _ in range(6):
        stack.client("sqs").receive_message(
            QueueUrl=stack.deployed.resources["CatsQueue"], VisibilityTimeout=0
        )


def _route(settled: Overview) -> tuple[Any, ...]:
    (row,) = [row for row in settled.rows if row.route == "cats"]
    return (row.published, row.classified, row.duplicates, row.dead_letters, row.lost)


@pytest.mark.parametrize("times", [1, 2])
def test_standard_a_route_letter_sent_back_settles_its_message(stack: Stack, times: int) -> None:
    # GIVEN `up --console` recording what SQS accepts, and the producer's one message, moved to
    # the cats DLQ by the redrive policy and sent back from the console `times` times (moved
    # again in between); the classifier found the last one a duplicate
    cloud = FakeCloud()
    cloud.log("ProducerFunction", {"message": "Producer run finished", "published": {"cats": 1}})
    with demo.record_accepted(stack.deployed) as accepted:
        first = stack.send("CatsQueue", json.dumps(photo_message(URL)))
        console = ConsoleData.fixed(stack.deployed, CloudActivity(cloud), accepted)
        client = client_of(console_app(console))
        for _ in range(times):
            _moved_by_redrive_policy(stack)
            _redrive(client)
        last, tag, body = _take(stack)
        cloud.log("ClassifierFunction", _record(last, "Duplicate"))

        # WHEN the Overview is drawn
        settled = overview(console, stack.deployed)

    # THEN the message is published once and settled once (a duplicate), none lost, and the
    # producer's count agrees
    assert (settled.problems, _route(settled)) == ([], (1, 0, 1, [], 0))
    # AND each message sent back names the one whose letter it was, one attempt higher
    previous = tag.removeprefix("message:")
    chain = (
        {last: f"message:{first}"}
        if times == 1
        else {
            previous: f"message:{first}",
            last: f"message:{previous}",
        }
    )
    assert (accepted.redriven(), body["attempt"]) == (chain, times)


def _express_letter(execution: str, attempt: int) -> str:
    """The workflow dead letter the EXPRESS classifier sends for a failed execution."""
    letter = json.loads(workflow_letter(URL, "ImageNotFound", "'localhost' answered 404"))
    letter["execution"] = execution
    letter["message"] = photo_message(URL, attempt=attempt)
    return json.dumps(letter)


@pytest.mark.parametrize(
    ("times", "last_outcome", "expected"),
    [
        (1, "Classified", (1, 1, 0, [], 0)),
        # The brief's case: the first message and its successor both ended on this letter
        (1, "ExecutionDeadLettered", (1, 0, 0, [("ImageNotFound", 1)], 0)),
        (2, "Classified", (1, 1, 0, [], 0)),
    ],
)
def test_express_a_workflow_letter_sent_back_settles_its_message(
    stack: Stack, times: int, last_outcome: str, expected: tuple[Any, ...]
) -> None:
    # GIVEN an EXPRESS workflow and `up --console` recording what SQS accepts; the producer's
    # one message failed for good (its record and its workflow letter), and the letter was
    # sent back from the console `times` times (failing again in between)
    machine = express_machine(stack, "ALL")
    execution = machine.replace(":stateMachine:", ":express:") + ":digest:"
    cloud = FakeCloud()
    cloud.log("ProducerFunction", {"message": "Producer run finished", "published": {"cats": 1}})
    with demo.record_accepted(stack.deployed) as accepted:
        assert accepted.express
        stack.send("CatsQueue", json.dumps(photo_message(URL)))
        console = ConsoleData.fixed(stack.deployed, CloudActivity(cloud), accepted)
        client = client_of(console_app(console))
        message_id, attempt = _take_first(stack), 0
        for time in range(times + 1):
            failed = time < times or last_outcome == "ExecutionDeadLettered"
            outcome = "ExecutionDeadLettered" if failed else last_outcome
            cloud.log("ClassifierFunction", _record(message_id, outcome, f"{execution}{time}"))
            if failed:
                stack.send(
                    "WorkflowDeadLetterQueue", _express_letter(f"{execution}{time}", attempt)
                )
            if time < times:
                _redrive(client)
                message_id, tag, body = _take(stack)
                attempt = body["attempt"]
                assert (tag, attempt) == (f"execution:{execution}{time}", time + 1)

        # WHEN the Overview is drawn
        settled = overview(console, stack.deployed)

    # THEN the message is published once and settled once where its last successor ended;
    # every failed execution has its letter (on the queue, or sent back); nothing is lost
    assert (settled.problems, _route(settled)) == ([], expected)


def _take_first(stack: Stack) -> str:
    """The producer's message taken off the cats queue by the classifier: its id."""
    queue = stack.deployed.resources["CatsQueue"]
    sqs = stack.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return str(message["MessageId"])
