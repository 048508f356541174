"""How long a redrive pass holds the letters it read (``tweetlens.dlq._Hold``).

A pass reads its whole queue before it sends anything, then sends and deletes one letter after
another: with ~1,000 letters in AWS (~30 ms a call) that outlasts one hold. The pass extends its
hold while it works, leaves alone a letter whose hold ran out all the same (another reader may
have it), and releases at the end only what it still holds. The hold is shortened here (a
second or two, moto's SQS keeps real time) and the pass stalled between letters on purpose.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.unit.classifier.classifier_testkit import Cloud
from tests.unit.classifier.test_classifier_dead_letter_tooling import CATS, DOGS, stack_of
from tweetlens import dlq
from tweetlens.dlq import SKIPPED_HOLD_LAPSED, DeadLetter, list_dead_letters, redrive, skip_reason
from tweetlens.stack import DeployedStack


def _message(post_id: str) -> str:
    return json.dumps(
        {"url": f"https://pbs.twimg.com/media/{post_id}.jpg", "post_id": post_id, "route": "cats"}
    )


def _moved(cloud: Cloud, *post_ids: str) -> None:
    """Messages the cats queue's redrive policy moved to its DLQ (no attributes), in order."""
    for post_id in post_ids:
        cloud.sqs.send_message(QueueUrl=cloud.cats_dlq_url, MessageBody=_message(post_id))


def _sent_back(cloud: Cloud, queue_url: str) -> list[str]:
    """The post ids of the messages on ``queue_url``, drained."""
    found: list[str] = []
    while messages := cloud.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            found.append(json.loads(message["Body"])["post_id"])
            cloud.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(found)


def _on_call(stack: DeployedStack, event: str, action: Callable[[], None]) -> None:
    """Run ``action`` at ``event`` of the SQS client the redrive uses (not the test's own)."""
    stack.client("sqs").meta.events.register(event, lambda **_: action())


def test_a_letter_whose_hold_lapses_mid_pass_is_neither_lost_nor_sent_twice(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two letters on the cats DLQ, a pass that holds them 1 s, and that stalls 1.3 s
    # after sending the first back; meanwhile a second pass (another operator) reads the
    # second, its hold lapsed, and sends it back
    monkeypatch.setattr(dlq, "HOLD_SECONDS", 1)
    monkeypatch.setattr(dlq, "HOLD_MARGIN_SECONDS", 0)
    stack = stack_of(cloud)
    _moved(cloud, "1", "2")
    second_pass: list[dict[str, int]] = []

    def stall() -> None:
        if not second_pass:  # after the first pass's first delete only
            second_pass.append({})
            time.sleep(1.3)
            second_pass[0] = redrive(stack, CATS)

    _on_call(stack, "after-call.sqs.DeleteMessage", stall)
    skipped: list[DeadLetter] = []

    # WHEN the first pass goes on
    sent = redrive(stack, CATS, on_skipped=skipped.append)

    # THEN each letter went back once (the first by the first pass, the second by the second),
    # the first pass left the second alone and says why, and the DLQ is empty
    assert (sent, second_pass) == ({CATS: 1}, [{CATS: 1}])
    assert [(json.loads(letter.body)["post_id"], skip_reason(letter)) for letter in skipped] == [
        ("2", SKIPPED_HOLD_LAPSED)
    ]
    assert _sent_back(cloud, stack.resources["CatsQueue"]) == ["1", "2"]
    assert list_dead_letters(stack) == []


def test_a_long_pass_keeps_its_letters_from_other_readers(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three letters, a hold of 2 s, and a pass that takes 0.7 s a letter (2.1 s in all),
    # while another reader looks at the DLQ before every send
    monkeypatch.setattr(dlq, "HOLD_SECONDS", 2)
    monkeypatch.setattr(dlq, "HOLD_MARGIN_SECONDS", 0)
    stack = stack_of(cloud)
    _moved(cloud, "1", "2", "3")
    seen: list[int] = []

    def slow_send() -> None:
        time.sleep(0.7)
        peek = cloud.sqs.receive_message(
            QueueUrl=cloud.cats_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        seen.append(len(peek.get("Messages", [])))

    _on_call(stack, "before-call.sqs.SendMessage", slow_send)
    skipped: list[DeadLetter] = []

    # WHEN the pass sends them back
    sent = redrive(stack, CATS, on_skipped=skipped.append)

    # THEN the pass extended its hold as it ran low: the other reader never saw a letter, and
    # all three went back once
    assert (sent, skipped, seen) == ({CATS: 3}, [], [0, 0, 0])
    assert _sent_back(cloud, stack.resources["CatsQueue"]) == ["1", "2", "3"]


def test_the_release_passes_over_a_letter_no_longer_held(cloud: Cloud) -> None:
    # GIVEN a letter to send back and a rejection the pass keeps, and an operator who purges
    # the DLQ right after the pass deleted the first (the kept letter's handle is then invalid)
    stack = stack_of(cloud)
    _moved(cloud, "1")
    cloud.sqs.send_message(
        QueueUrl=cloud.cats_dlq_url,
        MessageBody="not json",
        MessageAttributes={
            "error": {"DataType": "String", "StringValue": "NotJson"},
            "reason": {"DataType": "String", "StringValue": "the body is not JSON"},
        },
    )
    purged: list[bool] = []

    def purge() -> None:
        if not purged:  # after the pass's first delete only
            purged.append(True)
            cloud.sqs.purge_queue(QueueUrl=cloud.cats_dlq_url)

    _on_call(stack, "after-call.sqs.DeleteMessage", purge)
    kept: list[DeadLetter] = []

    # WHEN the pass ends, releasing what it kept
    sent = redrive(stack, on_skipped=kept.append)

    # THEN the pass did not fail on the kept letter's handle: one letter went back, one was
    # kept, and the queue is empty
    assert (sent, [letter.error for letter in kept]) == ({CATS: 1, DOGS: 0}, ["NotJson"])
    assert _sent_back(cloud, stack.resources["CatsQueue"]) == ["1"]
    assert list_dead_letters(stack) == []
