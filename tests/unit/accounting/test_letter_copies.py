"""Which dead letters are copies of one another (``tweetlens.dlq.mark_copies``): letters are
sent at least once, and the tools count, show and redrive one per execution or route message.
Letters are built as their writers send them (tests/settlement_kit.py); no queue is needed."""

from __future__ import annotations

import json
from dataclasses import replace

from tests.settlement_kit import REJECTED_BODY, rejection_letter, workflow_letter
from tweetlens.dlq import PRODUCER_DLQ, WORKFLOW_DLQ, DeadLetter, mark_copies

ARN = "arn:aws:states:us-east-1:123456789012:express:sm:digest-m1:1111"
OTHER_ARN = "arn:aws:states:us-east-1:123456789012:express:sm:digest-m2:2222"
MESSAGE = {"url": "https://pbs.twimg.com/media/Fcat.jpg", "post_id": "1", "route": "cats"}


def _copies(letters: list[DeadLetter]) -> list[tuple[str, str]]:
    return [(letter.message_id, letter.copy_of) for letter in mark_copies(letters)]


def test_the_earliest_sent_letter_of_an_execution_is_the_first() -> None:
    # GIVEN an execution's letter sent twice, the later one listed first, and another
    # execution's letter
    later = replace(workflow_letter(ARN, MESSAGE, copy=1), sent_at=20.0)
    earlier = replace(workflow_letter(ARN, MESSAGE), sent_at=10.0)
    other = replace(workflow_letter(OTHER_ARN, MESSAGE), sent_at=5.0)
    # WHEN copies are marked
    # THEN the later letter is the copy of the earlier, in the listing's order, and the other
    # execution's letter is no copy
    assert _copies([later, earlier, other]) == [
        ("letter-1111-1", "letter-1111-0"),
        ("letter-1111-0", ""),
        ("letter-2222-0", ""),
    ]


def test_a_rejection_is_the_first_letter_of_its_message_even_sent_later() -> None:
    # GIVEN a message SQS moved to the DLQ (it keeps its id, and its first send time) and the
    # classifier's rejection of it, sent later
    moved = DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id="m1",
        receipt_handle="r",
        body=json.dumps(REJECTED_BODY),
        error="MaxReceiveCountExceeded",
        reason="",
        route="cats",
        receive_count=5,
        sent_at=1.0,
    )
    rejection = replace(rejection_letter("m1", letter_id="L1"), sent_at=2.0)
    # WHEN copies are marked
    # THEN the rejection (which says why) is the first, the moved message its copy
    assert _copies([moved, rejection]) == [("m1", "L1"), ("L1", "")]


def test_letters_that_name_no_execution_or_message_are_never_copies() -> None:
    # GIVEN two identical producer letters, and two unreadable workflow letters
    producer = DeadLetter(
        queue=PRODUCER_DLQ,
        message_id="p1",
        receipt_handle="r",
        body=json.dumps({"kind": "photo", "error": "MediaMissing"}),
        error="MediaMissing",
        reason="",
        route="",
        receive_count=1,
    )
    unreadable = replace(producer, queue=WORKFLOW_DLQ, message_id="w1", body="not json")
    # WHEN copies are marked
    # THEN each is judged on its own: none is a copy
    assert _copies(
        [
            producer,
            replace(producer, message_id="p2"),
            unreadable,
            replace(unreadable, message_id="w2"),
        ]
    ) == [("p1", ""), ("p2", ""), ("w1", ""), ("w2", "")]
