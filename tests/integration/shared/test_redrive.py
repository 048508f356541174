"""`tweetlens dlq redrive` on the deployed stack: a new attempt, or the same message back."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from tests.integration.pipeline_kit import (
    PostSpec,
    Recordings,
    dead_letters_of,
    execution_arn,
    execution_name,
    executions_of,
    publish,
    record_outcomes,
    route_message,
    settle,
    workflow_letter_row,
)
from tweetlens.cli import cli
from tweetlens.demo import deployed
from tweetlens.demo_stream import Recording
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import STATE_FILE_ENV, DeployedStack

pytestmark = pytest.mark.integration

POISON_BODY = '{"url": "https://localhost/a.jpg", "oops":'
NOT_FOUND = "'localhost' answered 404: the image is gone"


@dataclass(frozen=True)
class Redriven:
    url: str
    recording: Recording
    # The same photo posted again once the first post was dead-lettered, before the redrive.
    later: Recording
    before: list[DeadLetter]
    output: str


@pytest.fixture(scope="module")
def redriven(pipeline: LocalPipeline, recordings: Recordings) -> Redriven:
    """A workflow dead letter (a gone photo, posted twice) and a route one (a poison message),
    redriven."""
    stack = deployed(pipeline)
    # The host answers 404 whatever the query; the query makes the URL this module's own.
    url = pipeline.images.fault_url("404") + "?post=redriven"
    recording = recordings.build([PostSpec("Deleted already", ("cat",), (url,))])
    publish(pipeline, recording)
    stack.client("sqs").send_message(QueueUrl=stack.resource("DogsQueue"), MessageBody=POISON_BODY)
    settle(pipeline)
    later = recordings.build([PostSpec("Still deleted", ("kitten",), (url,))])
    publish(pipeline, later)
    settle(pipeline)
    before = dead_letters_of(stack, WORKFLOW_DLQ) + dead_letters_of(stack, "DogsDeadLetterQueue")
    assert pipeline.state_file is not None
    # --force: the poison message is a rejection, which a plain redrive would keep.
    outcome = CliRunner().invoke(
        cli, ["dlq", "redrive", "--yes", "--force"], env={STATE_FILE_ENV: str(pipeline.state_file)}
    )
    assert outcome.exit_code == 0, outcome.output
    settle(pipeline)
    return Redriven(url, recording, later, before, outcome.output)


def test_redrive_reports_what_it_sent_back(redriven: Redriven) -> None:
    # GIVEN one workflow dead letter and one route dead letter
    assert sorted((letter.queue, letter.error) for letter in redriven.before) == [
        ("DogsDeadLetterQueue", "NotJson"),
        (WORKFLOW_DLQ, "ImageNotFound"),
    ]
    # WHEN `tweetlens dlq redrive --yes --force` ran (module fixture)
    # THEN it sent each back and said so per queue
    assert redriven.output.splitlines() == [
        "CatsDeadLetterQueue: 0 message(s) sent back",
        "DogsDeadLetterQueue: 1 message(s) sent back",
        "ProducerDeadLetterQueue: 0 message(s) sent back",
        "WorkflowDeadLetterQueue: 1 message(s) sent back",
    ]


def test_workflow_dead_letter_comes_back_as_a_new_attempt(
    stack: DeployedStack, redriven: Redriven
) -> None:
    # GIVEN a photo whose first execution failed with ImageNotFound and was dead-lettered
    url = redriven.url

    # WHEN its dead letter was redriven and the pipeline settled (module fixture)
    executions = executions_of(stack, url)
    letters = dead_letters_of(stack, WORKFLOW_DLQ)

    # THEN a second execution ran under the next name, and failed the same way
    assert [(e.name, e.status, e.error) for e in executions] == [
        (execution_name(url, 1), "FAILED", "ImageNotFound"),
        (execution_name(url, 2), "FAILED", "ImageNotFound"),
    ]
    # AND the only workflow dead letter left is the new one: attempt 1, its own execution
    assert [workflow_letter_row(letter) for letter in letters] == [
        {
            "queue": WORKFLOW_DLQ,
            "route": "cats",
            "error": "ImageNotFound",
            "message": route_message(redriven.recording, url, "cats", attempt=1),
            "error_type": "ImageNotFound",
            "error_message": NOT_FOUND,
            "body_error": "ImageNotFound",
            "execution": execution_arn(stack, execution_name(url, 2)),
            "status": "FAILED",
            "failed_state": "Fetch Image",
            "detected_by": "status-change-event",
        }
    ]
    assert json.loads(redriven.before[0].body)["message"]["attempt"] == 0


def test_gone_photo_posted_again_is_a_duplicate_of_its_one_letter(
    pipeline: LocalPipeline, redriven: Redriven
) -> None:
    # GIVEN a photo whose first execution failed for good (ImageNotFound) and was dead-lettered
    first = route_message(redriven.recording, redriven.url, "cats")
    assert route_message(redriven.later, redriven.url, "cats")["post_id"] != first["post_id"]

    # WHEN another post of it came once the pipeline had settled (module fixture)
    [letter] = [letter for letter in redriven.before if letter.queue == WORKFLOW_DLQ]

    # THEN that post started no execution: a duplicate of the failure, whose one letter (the
    # first post's, attempt 0) was all there was to redrive; the redrive started the second
    assert json.loads(letter.body)["message"] == first
    assert record_outcomes(pipeline, redriven.url) == {"ExecutionStarted": 2, "Duplicate": 1}


def test_route_dead_letter_goes_back_unchanged(stack: DeployedStack, redriven: Redriven) -> None:
    # GIVEN a poison message the classifier had rejected to the dogs dead-letter queue
    # WHEN it was redriven to DogsQueue and the classifier received it again (module fixture)
    letters = dead_letters_of(stack, "DogsDeadLetterQueue")

    # THEN it is back on the dogs dead-letter queue, byte for byte, rejected for the same reason
    assert [(letter.body, letter.error, letter.route) for letter in letters] == [
        (POISON_BODY, "NotJson", "")
    ]
    assert letters[0].reason == redriven.before[1].reason
    # A new message id: the classifier received it again and rejected it again.
    assert letters[0].message_id != redriven.before[1].message_id
