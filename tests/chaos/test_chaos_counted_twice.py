"""The chaos run's invariant "no message counted twice", one test per way a message gets two
ends, and a letter sent again (a recognised copy) breaking nothing. Settled from records written
as the pipeline writes them (tests/settlement_kit.py): no cloud."""

from __future__ import annotations

import json

from tests.settlement_kit import classifier_record, rejection_letter, workflow_letter
from tweetlens.accounting import ExecutionOutcome, record_outcomes
from tweetlens.chaos.invariants import no_message_counted_twice
from tweetlens.dlq import DeadLetter
from tweetlens.settlement import settle, settle_express

URL = "https://localhost:8443/media/chelsea.jpg"
EXPRESS_ARN = "arn:aws:states:us-east-1:123456789012:express:sm:digest-m1:1111"
NAME = "digest-1"
STANDARD_ARN = f"arn:aws:states:us-east-1:123456789012:execution:sm:{NAME}"
BODY = {"url": URL, "post_id": "1", "media_key": "3_1", "route": "cats", "attempt": 0}
INVARIANT = "no message counted twice (a letter sent again is a copy, counted once)"


def _moved(message_id: str) -> DeadLetter:
    """The message as the cats queue's redrive policy moved it: it keeps its id."""
    return DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id=message_id,
        receipt_handle="r",
        body=json.dumps(BODY),
        error="MaxReceiveCountExceeded",
        reason="the classifier failed on it on every receive (see its logs)",
        route="cats",
        receive_count=5,
    )


def test_letters_sent_again_are_copies_and_break_nothing() -> None:
    # GIVEN (STANDARD) m1's execution failed and the closer sent its letter twice, and m2 was
    # rejected by the classifier and also moved by SQS to the same DLQ
    records = [
        classifier_record("m1", "ExecutionStarted", NAME),
        classifier_record("m2", "Rejected"),
    ]
    failed = ExecutionOutcome(STANDARD_ARN, NAME, "cats", URL, "FAILED", "ImageNotFound")
    letters = [
        workflow_letter(STANDARD_ARN, BODY),
        workflow_letter(STANDARD_ARN, BODY, copy=1),
        rejection_letter("m2", letter_id="L2"),
        _moved("m2"),
    ]
    settled = settle({"m1": BODY, "m2": BODY}, record_outcomes(records), [failed], letters)

    # WHEN the invariant is checked
    invariant = no_message_counted_twice(settled)

    # THEN it holds, and its detail counts the copies
    assert (invariant.name, invariant.ok, invariant.detail) == (
        INVARIANT,
        True,
        "0 message(s) counted twice; 2 letter copy(ies) of 2 message(s) recognised",
    )
    assert settled.copies == {"m1": ["letter-st-1-1"], "m2": ["m2"]}


def test_a_route_letter_besides_a_started_execution_is_counted_twice() -> None:
    # GIVEN (STANDARD) m1 started an execution that classified the image, and yet SQS moved m1
    # to the route DLQ
    records = [classifier_record("m1", "ExecutionStarted", NAME)]
    done = ExecutionOutcome(STANDARD_ARN, NAME, "cats", URL, "DONE")
    settled = settle({"m1": BODY}, record_outcomes(records), [done], [_moved("m1")])

    # WHEN the invariant is checked
    invariant = no_message_counted_twice(settled)

    # THEN it is broken, naming the message and both ends
    assert (invariant.ok, invariant.detail) == (
        False,
        f"1 message(s) counted twice m1 (dead:MaxReceiveCountExceeded + started {NAME}); "
        "0 letter copy(ies) of 0 message(s) recognised",
    )


def test_a_route_letter_besides_a_duplicate_record_is_counted_twice() -> None:
    # GIVEN (STANDARD) m1 logged as a duplicate, and yet moved to the route DLQ
    records = [classifier_record("m1", "Duplicate")]
    settled = settle({"m1": BODY}, record_outcomes(records), [], [_moved("m1")])

    # WHEN the invariant is checked
    invariant = no_message_counted_twice(settled)

    # THEN it is broken: a dead letter and a duplicate
    assert (invariant.ok, invariant.detail) == (
        False,
        "1 message(s) counted twice m1 (dead:MaxReceiveCountExceeded + duplicate); "
        "0 letter copy(ies) of 0 message(s) recognised",
    )


def test_a_route_letter_besides_a_classification_is_counted_twice_even_with_a_copy() -> None:
    # GIVEN (EXPRESS) m1 logged Classified, and yet both rejected and moved to the route DLQ
    # (two route letters: one is a copy of the other)
    records = [classifier_record("m1", "Classified", EXPRESS_ARN)]
    letters = [rejection_letter("m1", letter_id="L1"), _moved("m1")]
    settled = settle_express({"m1": BODY}, records, letters)

    # WHEN the invariant is checked
    invariant = no_message_counted_twice(settled)

    # THEN the copy is recognised, and the classification is still a second end
    assert (invariant.ok, invariant.detail) == (
        False,
        "1 message(s) counted twice m1 (dead:InvalidMessage + done); "
        "1 letter copy(ies) of 1 message(s) recognised",
    )


def test_a_classified_and_dead_lettered_message_is_counted_twice() -> None:
    # GIVEN (EXPRESS) m1 logged Classified on one delivery and ExecutionDeadLettered on another,
    # its letter sent twice
    records = [
        classifier_record("m1", "Classified", EXPRESS_ARN),
        classifier_record("m1", "ExecutionDeadLettered", EXPRESS_ARN),
    ]
    letters = [workflow_letter(EXPRESS_ARN, BODY), workflow_letter(EXPRESS_ARN, BODY, copy=1)]
    settled = settle_express({"m1": BODY}, records, letters)

    # WHEN the invariant is checked
    invariant = no_message_counted_twice(settled)

    # THEN it is broken: done and dead
    assert (invariant.ok, invariant.detail) == (
        False,
        "1 message(s) counted twice m1 (done + dead); 0 letter copy(ies) of 0 message(s) "
        "recognised",
    )
