"""Every way an image can fail ends in a dead-letter queue with its reason, nothing is lost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from common.messages import url_digest
from tests.integration.pipeline_kit import (
    PostSpec,
    Recordings,
    dead_letters_of,
    execution_arn,
    execution_name,
    executions_of,
    publish,
    result_item,
    route_message,
    settle,
    workflow_letter_row,
)
from tweetlens.demo_stream import PHOTO_LABELS, Recording
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration


# What FetchImageFunction says for each broken route of the loopback image host.
FAILURES: dict[str, tuple[str, str]] = {
    "404": ("ImageNotFound", "'localhost' answered 404: the image is gone"),
    "410": ("ImageNotFound", "'localhost' answered 410: the image is gone"),
    "not-an-image": (
        "UnsupportedImageType",
        "the 69 bytes received are neither JPEG nor PNG (first bytes 3c68746d6c3e3c62)",
    ),
    "too-large": (
        "ImageTooLarge",
        "the image from 'localhost' exceeds the limit of 15728640 bytes",
    ),
    "redirect-private": (
        "BlockedUrl",
        "host '169.254.169.254' is an IP address literal (169.254.169.254); "
        "only host names are allowed",
    ),
}
FLAKY_KEY = "flaky-failures-module"
POISON_BODY = "this is {not json"


@dataclass(frozen=True)
class Settled:
    recording: Recording
    summary: dict[str, Any]
    workflow_letters: list[DeadLetter]


@pytest.fixture(scope="module")
def settled(pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings) -> Settled:
    """Every broken photo and the flaky one, published in one producer run and settled."""
    posts = [
        PostSpec(f"Broken photo {fault}", ("cat",), (pipeline.images.fault_url(fault),))
        for fault in FAILURES
    ]
    posts.append(PostSpec("Flaky host", ("cat",), (pipeline.images.fault_url(FLAKY_KEY),)))
    recording = recordings.build(posts)
    summary = publish(pipeline, recording)
    settle(pipeline)
    return Settled(recording, summary, dead_letters_of(stack, WORKFLOW_DLQ))


def test_every_broken_photo_is_published(settled: Settled) -> None:
    # GIVEN / WHEN the module's broken and flaky photos went through the pipeline
    # THEN each of them was one message on the cats route
    assert settled.summary["published"] == {"cats": len(FAILURES) + 1, "dogs": 0}
    # AND there is exactly one workflow dead letter per broken photo, none for the flaky one
    assert len(settled.workflow_letters) == len(FAILURES)


@pytest.mark.parametrize("fault", list(FAILURES))
def test_broken_photo_reaches_the_workflow_dead_letter_queue_with_its_error(
    fault: str, pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN a photo URL the image host answers with this fault
    url = pipeline.images.fault_url(fault)
    error, error_message = FAILURES[fault]
    name = execution_name(url)

    # WHEN the pipeline has settled (module fixture)
    rows = [
        workflow_letter_row(letter)
        for letter in settled.workflow_letters
        if json.loads(letter.body)["message"]["url"] == url
    ]

    # THEN its dead letter holds the original message and the fetch function's error
    assert rows == [
        {
            "queue": WORKFLOW_DLQ,
            "route": "cats",
            "error": error,
            "message": route_message(settled.recording, url, "cats"),
            "error_type": error,
            "error_message": error_message,
            "body_error": error,
            "execution": execution_arn(stack, name),
            "status": "FAILED",
            "failed_state": "Fetch Image",
            "detected_by": "status-change-event",
        }
    ]
    # AND its one execution failed with that error
    assert [(e.name, e.status, e.error) for e in executions_of(stack, url)] == [
        (name, "FAILED", error)
    ]
    # AND its result item says FAILED with the error and its cause
    item = result_item(stack, url)
    assert {key: item[key] for key in ("status", "error", "execution", "route")} == {
        "status": "FAILED",
        "error": error,
        "execution": execution_arn(stack, name),
        "route": "cats",
    }
    cause = json.loads(item["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == (error, error_message)
    assert "labels" not in item


def test_photo_behind_a_failing_host_is_retried_and_classified(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN a photo URL whose host answers 500 twice before serving the cat photo
    url = pipeline.images.fault_url(FLAKY_KEY)

    # WHEN the pipeline has settled (module fixture)
    item = result_item(stack, url)

    # THEN the fetch was retried until the photo came: three requests, one execution, DONE
    assert pipeline.images.request_count(f"/faults/{FLAKY_KEY}") == 3
    assert [(e.name, e.status) for e in executions_of(stack, url)] == [
        (execution_name(url), "DONE")
    ]
    assert item["status"] == "DONE"
    assert item["image_key"] == f"images/{url_digest(url)}.jpg"
    assert [label["name"] for label in item["labels"]] == list(PHOTO_LABELS["chelsea"])


def test_poison_message_reaches_the_route_dead_letter_queue_as_not_json(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN a message on the cats queue that is not JSON at all
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.resource("CatsQueue"), MessageBody=POISON_BODY)

    # WHEN the classifier has received it
    settle(pipeline)

    # THEN it is on the cats dead-letter queue, unchanged, with the error and the reason
    letters = dead_letters_of(stack, "CatsDeadLetterQueue")
    assert [(letter.body, letter.error, letter.reason, letter.route) for letter in letters] == [
        (POISON_BODY, "NotJson", "body: Invalid JSON: expected ident at line 1 column 2", "")
    ]
