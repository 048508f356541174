"""The workflow DLQ's two kinds of letter, as the state machine writes them, via `tweetlens dlq`.

A failed execution's letter carries the message and is sent back as a new attempt; a rejected
execution input carries the input as it came and stays on the queue, listed with its reason.
"""

from __future__ import annotations

import json
from typing import Any

from tests.unit.statemachine.harness import REGION, HostReply, Workflow, load_request
from tests.unit.statemachine.test_check_input import MESSAGE, URL, malformed_inputs
from tests.unit.statemachine.test_classify_image_workflow import CAT
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter, list_dead_letters, redrive
from tweetlens.stack import DeployedStack

ROUTE_QUEUE = "tweetlens-cats"


def stack_of(workflow: Workflow, cats_queue_url: str) -> DeployedStack:
    """The deployed stack as `tweetlens dlq` sees it: the logical ids it addresses."""
    return DeployedStack(
        resources={WORKFLOW_DLQ: workflow.dead_letter_queue_url, "CatsQueue": cats_queue_url},
        region=REGION,
    )


def fill_dead_letter_queue(workflow: Workflow) -> dict[str, Any]:
    """One failed execution (the image is gone) and two rejected inputs; returns the inputs."""
    workflow.host.serve(HostReply(status=404))
    assert workflow.run(load_request(CAT)).error == "ImageNotFound"
    inputs = malformed_inputs()
    for case in ("url_not_https", "input_is_an_array"):
        assert workflow.run_raw(case.replace("_", "-"), inputs[case]).status == "FAILED"
    return inputs


def summary(letters: list[DeadLetter]) -> list[tuple[str, str, str, str]]:
    return sorted((letter.queue, letter.route, letter.error, letter.reason) for letter in letters)


def test_list_shows_rejected_inputs_with_their_reason_and_route(workflow: Workflow) -> None:
    # GIVEN a workflow DLQ with a failed execution's letter and two rejected inputs
    cats = workflow.sqs.create_queue(QueueName=ROUTE_QUEUE)["QueueUrl"]
    fill_dead_letter_queue(workflow)

    # WHEN the dead letters are listed
    letters = list_dead_letters(stack_of(workflow, cats))

    # THEN each rejected input shows InvalidExecutionInput, its reason and its route if it has one
    assert [row[:3] for row in summary(letters)] == [
        (WORKFLOW_DLQ, "", "InvalidExecutionInput"),
        (WORKFLOW_DLQ, "cats", "ImageNotFound"),
        (WORKFLOW_DLQ, "cats", "InvalidExecutionInput"),
    ]
    reasons = {row[3] for row in summary(letters) if row[2] == "InvalidExecutionInput"}
    assert reasons == {MESSAGE, URL}


def test_redrive_replays_failed_messages_and_keeps_rejected_inputs(workflow: Workflow) -> None:
    # GIVEN a workflow DLQ with a failed execution's letter and two rejected inputs
    cats = workflow.sqs.create_queue(QueueName=ROUTE_QUEUE)["QueueUrl"]
    inputs = fill_dead_letter_queue(workflow)
    stack = stack_of(workflow, cats)
    skipped: list[DeadLetter] = []

    # WHEN the workflow DLQ is redriven
    moved = redrive(stack, queue=WORKFLOW_DLQ, on_skipped=skipped.append)

    # THEN the failed message went back to its route queue as a new attempt
    assert moved == {WORKFLOW_DLQ: 1}
    replayed = workflow.sqs.receive_message(QueueUrl=cats, MaxNumberOfMessages=10)["Messages"]
    message = load_request(CAT).message.model_dump()
    assert [json.loads(m["Body"]) for m in replayed] == [{**message, "attempt": 1}]
    # AND the rejected inputs were skipped, and are still on the queue, visible, unchanged
    assert sorted(letter.route for letter in skipped) == ["", "cats"]
    kept = sorted(
        (json.loads(letter.body)["input"] for letter in list_dead_letters(stack)),
        key=json.dumps,
    )
    assert kept == sorted([inputs["url_not_https"], inputs["input_is_an_array"]], key=json.dumps)
