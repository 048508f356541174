"""Settling an EXPRESS run from the classifier's records and the workflow dead letters."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.settlement_kit import (
    REJECTED_BODY,
    classifier_record,
    rejection_letter,
    workflow_letter,
)
from tweetlens.accounting import ClassifierRecord
from tweetlens.chaos import ChaosConfig
from tweetlens.dlq import DeadLetter
from tweetlens.settlement import settle_express

URL = "https://localhost:8443/media/chelsea.jpg"
ARN = "arn:aws:states:us-east-1:123456789012:express:sm:digest:1111"


def _body(post_id: str) -> dict[str, object]:
    return {"url": URL, "post_id": post_id, "media_key": f"3_{post_id}", "route": "cats"}


def _record(message_id: str, outcome: str, execution: str = "") -> ClassifierRecord:
    return classifier_record(message_id, outcome, execution)


def _letter(execution: str, post_id: str, error: str = "ImageNotFound") -> DeadLetter:
    return workflow_letter(execution, _body(post_id), error)


def test_classified_and_duplicate_records_end_done_and_duplicate() -> None:
    # GIVEN one record Classified and a copy found a Duplicate, then handled again
    bodies = {"m1": _body("1"), "m2": _body("2")}
    records = [
        _record("m1", "Classified", ARN),
        _record("m2", "InFlight", ARN),
        _record("m1", "Duplicate"),  # its batch was delivered again after it was settled
    ]
    # WHEN the run is settled
    settled = settle_express(bodies, records, [])
    # THEN the settling outcome wins and nothing is orphaned
    assert (settled.fate, settled.orphan_executions) == ({"m1": "done", "m2": "duplicate"}, [])


def test_a_dead_lettered_record_ends_in_its_execution_letter() -> None:
    # GIVEN a record whose execution failed for good and the letter the classifier sent
    settled = settle_express(
        {"m1": _body("1")}, [_record("m1", "ExecutionDeadLettered", ARN)], [_letter(ARN, "1")]
    )
    # THEN the message ends in the workflow dead-letter queue with the letter's reason
    assert (settled.fate, settled.orphan_executions) == ({"m1": "dead:ImageNotFound"}, [])


def test_a_letter_sent_twice_for_one_execution_is_one_end_and_a_copy() -> None:
    # GIVEN a record whose execution failed for good, and its letter sent twice (the classifier
    # could not record the first as sent; each letter is an SQS message of its own)
    letters = [_letter(ARN, "1"), workflow_letter(ARN, _body("1"), copy=1)]
    # WHEN the run is settled
    settled = settle_express(
        {"m1": _body("1")}, [_record("m1", "ExecutionDeadLettered", ARN)], letters
    )
    # THEN the message ends once, in the first letter; the second is its copy, not a second end
    assert (settled.fate, settled.double_counted, settled.copies, settled.orphan_executions) == (
        {"m1": "dead:ImageNotFound"},
        {},
        {"m1": ["letter-1111-1"]},
        [],
    )


def test_a_redelivered_dead_lettered_record_ends_in_the_earlier_letter() -> None:
    # GIVEN a message dead-lettered on its first delivery; the redelivery found the marker
    # and logged ExecutionDeadLettered naming no execution
    records = [_record("m1", "ExecutionDeadLettered")]
    # WHEN the run is settled
    settled = settle_express({"m1": _body("1")}, records, [_letter(ARN, "1")])
    # THEN the letter carrying the message settles it
    assert (settled.fate, settled.orphan_executions) == ({"m1": "dead:ImageNotFound"}, [])


def test_a_dead_lettered_record_without_letter_is_lost() -> None:
    # GIVEN a record logged ExecutionDeadLettered but no letter in the queue
    settled = settle_express({"m1": _body("1")}, [_record("m1", "ExecutionDeadLettered", ARN)], [])
    # THEN the message is lost
    assert settled.fate == {"m1": "lost"}


def test_a_message_without_record_is_lost_and_a_stray_letter_an_orphan() -> None:
    # GIVEN a message the classifier never logged, and a letter no record names
    settled = settle_express({"m1": _body("1")}, [], [_letter(ARN, "9")])
    # THEN the message is lost and the letter's execution is an orphan
    assert (settled.fate, settled.orphan_executions) == ({"m1": "lost"}, [ARN])


def test_a_rejected_message_ends_in_the_route_letter_naming_it() -> None:
    # GIVEN a message the classifier rejected, and its letter: a new SQS message with an id of
    # its own, naming the rejected message in source_message_id
    records = [_record("m1", "Rejected")]
    # WHEN the run is settled
    settled = settle_express({"m1": REJECTED_BODY}, records, [rejection_letter("m1")])
    # THEN it ends in that letter, with its error, once, and nothing is orphaned
    assert (settled.fate, settled.double_counted, settled.orphan_executions) == (
        {"m1": "dead:InvalidMessage"},
        {},
        [],
    )


def test_a_rejected_message_without_its_letter_is_lost() -> None:
    # GIVEN two messages the classifier rejected, and only the second one's letter, whose own
    # id is the first message's (a letter is matched by the message it names, not its own id)
    records = [_record("m1", "Rejected"), _record("m2", "Rejected")]
    letters = [rejection_letter("m2", letter_id="m1")]
    # WHEN the run is settled
    settled = settle_express({"m1": REJECTED_BODY, "m2": REJECTED_BODY}, records, letters)
    # THEN the first is lost and the second ends in its letter
    assert settled.fate == {"m1": "lost", "m2": "dead:InvalidMessage"}


def test_express_config_refuses_aborts_and_short_visibility() -> None:
    # GIVEN / WHEN an EXPRESS run asked to abort executions
    with pytest.raises(ValidationError, match="cannot be aborted"):
        ChaosConfig.for_posts(40, seed=1, workflow_type="EXPRESS", execution_aborts=1)
    # AND one whose visibility would fall below the 370 s a batch may be held (the classifier's
    # 360 s timeout and Lambda's 10 s init limit)
    with pytest.raises(ValidationError, match="below the 370 s a batch may be held"):
        ChaosConfig.for_posts(40, seed=1, workflow_type="EXPRESS", visibility_factor=1 / 6.5)


def test_express_config_defaults() -> None:
    # GIVEN / WHEN the defaults for an EXPRESS run
    config = ChaosConfig.for_posts(40, seed=1, workflow_type="EXPRESS")
    # THEN no aborts, a 432 s visibility and time to wait it out
    assert (config.execution_aborts, config.kill_recovery_seconds) == (0, 432.0)
    assert config.timeout_seconds == 1032.0
