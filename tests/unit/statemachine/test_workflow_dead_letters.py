"""The workflow DLQ's two kinds of letter, as the execution closer writes them, via `tweetlens dlq`.

A failed execution's letter carries the message and is sent back as a new attempt; a hand-started
execution's malformed input is kept as it came, listed with its error, and stays on the queue.
"""

from __future__ import annotations

import json
from typing import Any

from execution_closer.closer import Closer
from tests.conftest import EVENTS_DIR
from tests.unit.statemachine.harness import (
    REGION,
    RESULTS_TABLE,
    HostReply,
    Workflow,
    load_request,
)
from tests.unit.statemachine.test_classify_image_workflow import CAT
from tests.unit.statemachine.test_execution_closer import ended_from
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter, list_dead_letters, redrive
from tweetlens.stack import DeployedStack

ROUTE_QUEUE = "tweetlens-cats"
MALFORMED = ("url_not_a_string", "empty_object")


def stack_of(workflow: Workflow, cats_queue_url: str) -> DeployedStack:
    """The deployed stack as `tweetlens dlq` sees it: the logical ids it addresses (the results
    table too: a redrive reads whether a workflow letter's image was classified since)."""
    return DeployedStack(
        resources={
            WORKFLOW_DLQ: workflow.dead_letter_queue_url,
            "CatsQueue": cats_queue_url,
            "ResultsTable": RESULTS_TABLE,
        },
        region=REGION,
    )


def fill_dead_letter_queue(workflow: Workflow, closer: Closer) -> dict[str, Any]:
    """One failed execution (the image is gone) and two malformed inputs, each closed."""
    workflow.host.serve(HostReply(status=404))
    arns = [workflow.run(load_request(CAT)).arn]
    inputs = json.loads(
        (EVENTS_DIR / "bad_input_state_machine_inputs.json").read_text(encoding="utf-8")
    )
    for case in MALFORMED:
        arns.append(workflow.run_raw(case.replace("_", "-"), inputs[case]).arn)
    for arn in arns:
        closer.close(ended_from(workflow.status_change_event(arn)))
    return {case: inputs[case] for case in MALFORMED}


def summary(letters: list[DeadLetter]) -> list[tuple[str, str, str]]:
    return sorted((letter.queue, letter.route, letter.error) for letter in letters)


def test_list_shows_every_letter_with_its_error_and_route(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN a workflow DLQ with a failed execution's letter and two malformed inputs
    cats = workflow.sqs.create_queue(QueueName=ROUTE_QUEUE)["QueueUrl"]
    fill_dead_letter_queue(workflow, closer)

    # WHEN the dead letters are listed
    letters = list_dead_letters(stack_of(workflow, cats))

    # THEN each shows its execution's error, and its route when the input has one
    errors = {letter.error for letter in letters if letter.error != "ImageNotFound"}
    assert len(errors) == 1
    [input_error] = errors
    assert summary(letters) == sorted(
        [
            (WORKFLOW_DLQ, "", input_error),
            (WORKFLOW_DLQ, "cats", "ImageNotFound"),
            (WORKFLOW_DLQ, "cats", input_error),
        ]
    )


def test_redrive_replays_failed_messages_and_keeps_malformed_inputs(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN a workflow DLQ with a failed execution's letter and two malformed inputs
    cats = workflow.sqs.create_queue(QueueName=ROUTE_QUEUE)["QueueUrl"]
    inputs = fill_dead_letter_queue(workflow, closer)
    stack = stack_of(workflow, cats)
    skipped: list[DeadLetter] = []

    # WHEN the workflow DLQ is redriven
    moved = redrive(stack, queue=WORKFLOW_DLQ, on_skipped=skipped.append)

    # THEN the failed message went back to its route queue as a new attempt
    assert moved == {WORKFLOW_DLQ: 1}
    replayed = workflow.sqs.receive_message(QueueUrl=cats, MaxNumberOfMessages=10)["Messages"]
    message = load_request(CAT).message.model_dump()
    assert [json.loads(m["Body"]) for m in replayed] == [{**message, "attempt": 1}]
    # AND the malformed inputs were skipped, and are still on the queue, visible, unchanged
    assert sorted(letter.route for letter in skipped) == ["", "cats"]
    kept = sorted(
        (json.loads(letter.body)["input"] for letter in list_dead_letters(stack)),
        key=json.dumps,
    )
    assert kept == sorted(inputs.values(), key=json.dumps)
