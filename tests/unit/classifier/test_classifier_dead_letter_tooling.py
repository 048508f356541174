"""Route dead letters as the classifier writes them, sent back by `tweetlens dlq redrive`.

A letter the classifier rejected (``NotJson``, ``InvalidMessage``) would be rejected again if
replayed as it is: a redrive leaves it on its queue unless forced. A letter the queue's redrive
policy moved there (no attributes: the classifier failed on it five times) is sent back one
attempt higher, so it is never taken for a copy of a failure whose letter never got out.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from classifier.logic import Classifier
from classifier.models import RouteQueueRecord
from classifier.settings import load_settings
from tests.unit.classifier.classifier_testkit import (
    CATS_DLQ,
    CATS_QUEUE,
    DOGS_DLQ,
    DOGS_QUEUE,
    REGION,
    Cloud,
    load_event,
    no_sleep,
)
from tweetlens.dlq import (
    PRODUCER_DLQ,
    REDRIVEN_FROM_ATTRIBUTE,
    SKIPPED_NO_MESSAGE,
    SKIPPED_PRODUCER_LETTER,
    SKIPPED_REJECTION,
    WORKFLOW_DLQ,
    DeadLetter,
    is_replayable,
    list_dead_letters,
    redrive,
    skip_reason,
)
from tweetlens.stack import DeployedStack

NOW = 1_732_700_000
CATS = "CatsDeadLetterQueue"
DOGS = "DogsDeadLetterQueue"
# What classifier_sqs_invalid.json's seven records are rejected with.
REJECTIONS = Counter({"InvalidMessage": 6, "NotJson": 1})


def stack_of(cloud: Cloud) -> DeployedStack:
    """The deployed stack as `tweetlens dlq` sees it, each route queue dead-lettering to its DLQ."""
    urls = {
        name: cloud.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for name in (CATS_QUEUE, DOGS_QUEUE)
    }
    for queue, dead_letter_queue in ((CATS_QUEUE, CATS_DLQ), (DOGS_QUEUE, DOGS_DLQ)):
        target = cloud.sqs.get_queue_attributes(
            QueueUrl=cloud.sqs.get_queue_url(QueueName=dead_letter_queue)["QueueUrl"],
            AttributeNames=["QueueArn"],
        )["Attributes"]["QueueArn"]
        cloud.sqs.set_queue_attributes(
            QueueUrl=urls[queue],
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": "5"})
            },
        )
    return DeployedStack(
        resources={
            "CatsQueue": urls[CATS_QUEUE],
            CATS: cloud.cats_dlq_url,
            "DogsQueue": urls[DOGS_QUEUE],
            DOGS: cloud.dogs_dlq_url,
        },
        region=REGION,
    )


def classify(cloud: Cloud, metrics: Metrics, event: dict[str, Any]) -> None:
    """What app.lambda_handler does with the event, with the suite's emulated resources."""
    classifier = Classifier(
        settings=load_settings(cloud.environment()),
        sqs=cloud.sqs,
        stepfunctions=cloud.stepfunctions,
        dynamodb=cloud.dynamodb,
        metrics=metrics,
        clock=lambda: NOW,
        sleep=no_sleep,
    )
    batch = classifier.open_batch(event["Records"])
    processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)
    process_partial_response(event=event, record_handler=batch.handle_record, processor=processor)


def fill_cats_dead_letter_queue(cloud: Cloud, metrics: Metrics) -> str:
    """Seven rejections by the classifier, and one message its queue's redrive policy moved."""
    classify(cloud, metrics, load_event("classifier_sqs_invalid.json"))
    moved = load_event("classifier_sqs_replay.json")["Records"][0]["body"]
    cloud.sqs.send_message(QueueUrl=cloud.cats_dlq_url, MessageBody=moved)
    return moved


def one_attempt_higher(body: str) -> str:
    """A moved route message as `tweetlens dlq redrive` sends it back (tweetlens.dlq)."""
    message = json.loads(body)
    return json.dumps(message | {"attempt": message["attempt"] + 1}, separators=(",", ":"))


def received_bodies(cloud: Cloud, queue_url: str) -> list[str]:
    return sorted(letter["body"] for letter in cloud.dead_letters(queue_url))


def test_redrive_sends_back_what_can_work_and_keeps_the_rejections(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the cats DLQ with seven rejections by the classifier and one moved message
    stack = stack_of(cloud)
    moved = fill_cats_dead_letter_queue(cloud, metrics)
    skipped: list[DeadLetter] = []

    # WHEN the route dead-letter queues are redriven
    sent = redrive(stack, on_skipped=skipped.append)

    # THEN only the moved message went back to its source queue, one attempt higher
    assert sent == {CATS: 1, DOGS: 0}
    assert received_bodies(cloud, stack.resources["CatsQueue"]) == [one_attempt_higher(moved)]
    assert (json.loads(moved)["attempt"], json.loads(one_attempt_higher(moved))["attempt"]) == (
        1,
        2,
    )
    # AND every rejection was skipped, and is still on its queue, visible, with its error
    assert Counter(letter.error for letter in skipped) == REJECTIONS
    assert {skip_reason(letter) for letter in skipped} == {SKIPPED_REJECTION}
    kept = list_dead_letters(stack)
    assert Counter(letter.error for letter in kept) == REJECTIONS
    assert sorted(letter.body for letter in kept) == sorted(letter.body for letter in skipped)


def test_a_listed_route_letter_names_the_message_it_ends(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the cats DLQ with seven rejections by the classifier, and one message its queue's
    # redrive policy moved there (sent to the DLQ directly: the move keeps the message's id)
    stack = stack_of(cloud)
    records = load_event("classifier_sqs_invalid.json")["Records"]
    classify(cloud, metrics, {"Records": records})
    moved = load_event("classifier_sqs_replay.json")["Records"][0]["body"]
    moved_id = cloud.sqs.send_message(QueueUrl=cloud.cats_dlq_url, MessageBody=moved)["MessageId"]

    # WHEN the dead letters are listed
    letters = list_dead_letters(stack)

    # THEN each rejection names the message it rejected (its letter has an id of its own), and
    # the moved message, naming none, is the message of its own id
    assert sorted(
        (letter.body, letter.error, letter.source_message_id, letter.route_message_id)
        for letter in letters
        if letter.message_id != moved_id
    ) == sorted(
        (record["body"], error, record["messageId"], record["messageId"])
        for record, error in zip(records, ["NotJson", *["InvalidMessage"] * 6], strict=True)
    )
    assert [
        (letter.body, letter.error, letter.source_message_id, letter.route_message_id)
        for letter in letters
        if letter.message_id == moved_id
    ] == [(moved, "MaxReceiveCountExceeded", "", moved_id)]
    assert {letter.message_id for letter in letters}.isdisjoint(
        record["messageId"] for record in records
    )


def test_forced_redrive_sends_back_the_rejections_too(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the cats DLQ with seven rejections by the classifier and one moved message
    stack = stack_of(cloud)
    moved = fill_cats_dead_letter_queue(cloud, metrics)
    (moved_id,) = [m.message_id for m in list_dead_letters(stack) if not m.source_message_id]
    rejected = load_event("classifier_sqs_invalid.json")["Records"]
    skipped: list[DeadLetter] = []

    # WHEN the redrive is forced
    sent = redrive(stack, force=True, on_skipped=skipped.append)

    # THEN all eight went back to the cats queue, the rejections unchanged, the moved message
    # one attempt higher, each with one attribute: the message its letter ended (the rejected
    # message's id, the moved message's own), so the new message is known as that one sent
    # again; no rejection's attributes (its error, the id of the message it rejected) ride
    # along to stand for the new message; and the DLQ is empty
    assert sent == {CATS: 8, DOGS: 0}
    assert skipped == []
    back = cloud.dead_letters(stack.resources["CatsQueue"])
    expected = [
        {"body": one_attempt_higher(moved), REDRIVEN_FROM_ATTRIBUTE: f"message:{moved_id}"},
        *(
            {"body": record["body"], REDRIVEN_FROM_ATTRIBUTE: f"message:{record['messageId']}"}
            for record in rejected
        ),
    ]
    assert sorted(back, key=lambda message: sorted(message.items())) == sorted(
        expected, key=lambda message: sorted(message.items())
    )
    assert list_dead_letters(stack) == []


def test_forced_replay_of_an_unchanged_rejection_is_rejected_again(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN a forced redrive of the classifier's seven rejections
    stack = stack_of(cloud)
    classify(cloud, metrics, load_event("classifier_sqs_invalid.json"))
    redrive(stack, force=True)

    # WHEN the classifier receives them from the cats queue again (new SQS message ids)
    template = load_event("classifier_sqs_invalid.json")["Records"][0]
    received = cloud.sqs.receive_message(
        QueueUrl=stack.resources["CatsQueue"], MaxNumberOfMessages=10
    )["Messages"]
    classify(
        cloud,
        metrics,
        {
            "Records": [
                template
                | {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                }
                for message in received
            ]
        },
    )

    # THEN each is rejected again with the same error: why a redrive skips them by default
    letters = list_dead_letters(stack)
    assert Counter(letter.error for letter in letters) == REJECTIONS
    # AND each new letter names the message it rejected now, not the one of the first letter
    assert sorted(letter.source_message_id for letter in letters) == sorted(
        message["MessageId"] for message in received
    )


def letter(queue: str, error: str = "", body: str = "{}") -> DeadLetter:
    return DeadLetter(
        queue=queue,
        message_id="8f2d4c1a-5b6e-4f7a-9c0d-1e2f3a4b5c6d",
        receipt_handle="AQEB",
        body=body,
        error=error,
        reason="",
        route="",
        receive_count=1,
    )


WITH_MESSAGE = json.dumps({"message": {"url": "https://pbs.twimg.com/media/x.jpg"}})
WITHOUT_MESSAGE = json.dumps({"message": None, "input": {"message": {}}})


@pytest.mark.parametrize(
    ("dead_letter", "unforced", "forced"),
    [
        (letter(CATS, "NotJson"), SKIPPED_REJECTION, None),
        (letter(DOGS, "InvalidMessage"), SKIPPED_REJECTION, None),
        (letter(CATS, "MaxReceiveCountExceeded"), None, None),
        (letter(WORKFLOW_DLQ, "ImageNotFound", WITH_MESSAGE), None, None),
        (
            letter(WORKFLOW_DLQ, "States.Runtime", WITHOUT_MESSAGE),
            SKIPPED_NO_MESSAGE,
            SKIPPED_NO_MESSAGE,
        ),
        (
            letter(WORKFLOW_DLQ, "UnreadableDeadLetter", "not json"),
            SKIPPED_NO_MESSAGE,
            SKIPPED_NO_MESSAGE,
        ),
        (letter(PRODUCER_DLQ, "MediaMissing"), SKIPPED_PRODUCER_LETTER, SKIPPED_PRODUCER_LETTER),
    ],
    ids=[
        "route NotJson",
        "route InvalidMessage",
        "route moved by the redrive policy",
        "workflow with a message",
        "workflow without a message",
        "workflow not JSON",
        "producer letter",
    ],
)
def test_only_the_classifier_s_rejections_are_replayed_by_force(
    dead_letter: DeadLetter, unforced: str | None, forced: str | None
) -> None:
    # GIVEN a dead letter of one kind
    # WHEN a redrive decides about it, forced or not
    # THEN force changes the decision for the classifier's rejections only
    assert (skip_reason(dead_letter), skip_reason(dead_letter, force=True)) == (unforced, forced)
    assert (is_replayable(dead_letter), is_replayable(dead_letter, force=True)) == (
        unforced is None,
        forced is None,
    )
