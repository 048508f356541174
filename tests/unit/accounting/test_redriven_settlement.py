"""A redriven message is the same message: the settlement ends the message whose letter a
redrive sent back where its successor ends, along the chain (``tweetlens.settlement``).

The redrive tags what it sends with what the letter ended (``tweetlens.dlq.copy_key``:
``execution:<ARN>`` or ``message:<id>``); records and letters are built as their writers
write them (tests/settlement_kit.py), so no queue or workflow is needed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.settlement_kit import classifier_record, workflow_letter
from tweetlens.accounting import ExecutionOutcome, record_outcomes
from tweetlens.dlq import DeadLetter
from tweetlens.settlement import settle, settle_express

URL = "https://localhost:8443/media/chelsea.jpg"
PREFIX = "arn:aws:states:us-east-1:123456789012:execution:classify-image:"
EXPRESS = "arn:aws:states:us-east-1:123456789012:express:classify-image:digest:"


def _body(attempt: int) -> dict[str, Any]:
    return {"url": URL, "post_id": "1", "media_key": "3_1", "route": "cats", "attempt": attempt}


def _execution(name: str, status: str) -> ExecutionOutcome:
    return ExecutionOutcome(
        arn=PREFIX + name, name=name, route="cats", url=URL, status=status, error=""
    )


def _moved(message_id: str) -> DeadLetter:
    """A message the cats queue's redrive policy moved: it keeps its id."""
    return DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id=message_id,
        receipt_handle="r",
        body="{}",
        error="MaxReceiveCountExceeded",
        reason="failed on every receive",
        route="cats",
        receive_count=6,
    )


# STANDARD ---------------------------------------------------------------------------------


def test_standard_a_message_redriven_once_ends_where_its_successor_ends() -> None:
    # GIVEN m1 whose execution failed; its workflow letter was sent back as s1 (attempt 1),
    # whose execution classified the image
    bodies = {"m1": _body(0), "s1": _body(1)}
    outcomes = record_outcomes(
        [
            classifier_record("m1", "ExecutionStarted", "digest-1"),
            classifier_record("s1", "ExecutionStarted", "digest-2"),
        ]
    )
    executions = [_execution("digest-1", "FAILED"), _execution("digest-2", "DONE")]
    # WHEN the run is settled with s1 known as the redrive of digest-1's letter
    settled = settle(bodies, outcomes, executions, [], {"s1": f"execution:{PREFIX}digest-1"})
    # THEN m1 is done, through s1, which has no end of its own; nothing is orphaned
    assert (settled.fate, settled.successors, settled.orphan_executions) == (
        {"m1": "done"},
        {"m1": "s1"},
        [],
    )


def test_standard_without_the_tag_the_same_run_loses_the_first_message() -> None:
    # GIVEN the run above, its second message not known as a redrive (an untagged send)
    bodies = {"m1": _body(0), "s1": _body(1)}
    outcomes = record_outcomes(
        [
            classifier_record("m1", "ExecutionStarted", "digest-1"),
            classifier_record("s1", "ExecutionStarted", "digest-2"),
        ]
    )
    executions = [_execution("digest-1", "FAILED"), _execution("digest-2", "DONE")]
    # WHEN it is settled
    settled = settle(bodies, outcomes, executions, [])
    # THEN m1 is lost (its execution failed and no letter holds it) and s1 is a message of its
    # own: what the tag is for
    assert settled.fate == {"m1": "lost", "s1": "done"}


def test_standard_a_message_redriven_twice_ends_where_the_last_successor_ends() -> None:
    # GIVEN m1 failed, sent back as s1, which failed too and was sent back as s2, which ended
    # in the workflow DLQ for good (its letter is on the queue, sent twice)
    bodies = {"m1": _body(0), "s1": _body(1), "s2": _body(2)}
    outcomes = record_outcomes(
        [
            classifier_record("m1", "ExecutionStarted", "digest-1"),
            classifier_record("s1", "ExecutionStarted", "digest-2"),
            classifier_record("s2", "ExecutionStarted", "digest-3"),
        ]
    )
    executions = [
        _execution("digest-1", "FAILED"),
        _execution("digest-2", "FAILED"),
        _execution("digest-3", "FAILED"),
    ]
    letter = replace(workflow_letter(PREFIX + "digest-3", _body(2)), sent_at=1.0)
    copy = replace(workflow_letter(PREFIX + "digest-3", _body(2), copy=1), sent_at=2.0)
    redriven = {"s1": f"execution:{PREFIX}digest-1", "s2": f"execution:{PREFIX}digest-2"}
    # WHEN the run is settled
    settled = settle(bodies, outcomes, executions, [letter, copy], redriven)
    # THEN m1 ends in s2's letter, its copy named with m1; the successors have no end of their
    # own
    assert (settled.fate, settled.successors, settled.copies, settled.orphan_executions) == (
        {"m1": "dead:ImageNotFound"},
        {"m1": "s2"},
        {"m1": [copy.message_id]},
        [],
    )


def test_standard_route_letters_redriven_twice_end_where_the_last_successor_ends() -> None:
    # GIVEN m1 moved to the cats DLQ by the redrive policy, sent back as s1, moved again (SQS
    # keeps its id and its tag), sent back as s2, whose execution classified the image
    bodies = {"m1": _body(0), "s1": _body(1), "s2": _body(2)}
    outcomes = record_outcomes([classifier_record("s2", "ExecutionStarted", "digest-1")])
    redriven = {"s1": "message:m1", "s2": "message:s1"}
    # WHEN the run is settled
    settled = settle(bodies, outcomes, [_execution("digest-1", "DONE")], [], redriven)
    # THEN m1 is done through s2
    assert (settled.fate, settled.successors, settled.orphan_executions) == (
        {"m1": "done"},
        {"m1": "s2"},
        [],
    )


def test_standard_a_letter_still_on_its_queue_ends_the_message_though_sent_back() -> None:
    # GIVEN m1's route letter sent back as s1 (classified) but not deleted: the redrive died
    # between sending and deleting it
    bodies = {"m1": _body(0), "s1": _body(1)}
    outcomes = record_outcomes([classifier_record("s1", "ExecutionStarted", "digest-1")])
    # WHEN the run is settled
    settled = settle(
        bodies, outcomes, [_execution("digest-1", "DONE")], [_moved("m1")], {"s1": "message:m1"}
    )
    # THEN the letter ends m1 until a redrive sends it back again (never lost); s1 is still no
    # message of its own
    assert (settled.fate, settled.successors) == ({"m1": "dead:MaxReceiveCountExceeded"}, {})


def test_standard_a_workflow_letter_still_queued_though_sent_back_is_counted_once() -> None:
    # GIVEN m1 whose execution failed; its workflow letter was sent back as s1 (classified)
    # but is still on its queue (the redrive died between sending and deleting it), and m2
    # whose execution failed and whose letter was sent back as s2 and deleted
    bodies = {"m1": _body(0), "s1": _body(1), "m2": _body(0), "s2": _body(1)}
    outcomes = record_outcomes(
        [
            classifier_record("m1", "ExecutionStarted", "digest-1"),
            classifier_record("s1", "ExecutionStarted", "digest-2"),
            classifier_record("m2", "ExecutionStarted", "digest-3"),
            classifier_record("s2", "ExecutionStarted", "digest-4"),
        ]
    )
    executions = [
        _execution("digest-1", "FAILED"),
        _execution("digest-2", "DONE"),
        _execution("digest-3", "FAILED"),
        _execution("digest-4", "DONE"),
    ]
    redriven = {"s1": f"execution:{PREFIX}digest-1", "s2": f"execution:{PREFIX}digest-3"}

    # WHEN the run is settled
    settled = settle(
        bodies, outcomes, executions, [workflow_letter(PREFIX + "digest-1", _body(0))], redriven
    )

    # THEN only m2's letter counts as sent back and gone: m1's is counted by the letter itself
    assert settled.workflow_letters_sent_back == 1


# EXPRESS ----------------------------------------------------------------------------------


def test_express_a_message_redriven_once_ends_where_its_successor_ends() -> None:
    # GIVEN m1 dead-lettered by execution 1, whose letter was sent back as s1, classified
    bodies = {"m1": _body(0), "s1": _body(1)}
    records = [
        classifier_record("m1", "ExecutionDeadLettered", EXPRESS + "1"),
        classifier_record("s1", "Classified", EXPRESS + "2"),
    ]
    # WHEN the run is settled
    settled = settle_express(bodies, records, [], {"s1": f"execution:{EXPRESS}1"})
    # THEN m1 is done through s1; nothing is orphaned
    assert (settled.fate, settled.successors, settled.orphan_executions) == (
        {"m1": "done"},
        {"m1": "s1"},
        [],
    )


def test_express_redriven_twice_the_first_message_ends_in_the_last_letter_once() -> None:
    # GIVEN m1 dead-lettered (execution 1), sent back as s1, dead-lettered again (execution 2),
    # sent back as s2, dead-lettered a third time (execution 3): its letter is on the queue
    bodies = {"m1": _body(0), "s1": _body(1), "s2": _body(2)}
    records = [
        classifier_record("m1", "ExecutionDeadLettered", EXPRESS + "1"),
        classifier_record("s1", "ExecutionDeadLettered", EXPRESS + "2"),
        classifier_record("s2", "ExecutionDeadLettered", EXPRESS + "3"),
    ]
    letter = workflow_letter(EXPRESS + "3", _body(2))
    redriven = {"s1": f"execution:{EXPRESS}1", "s2": f"execution:{EXPRESS}2"}
    # WHEN the run is settled
    settled = settle_express(bodies, records, [letter], redriven)
    # THEN m1 ends in execution 3's letter, once: the letter ends one message, not three
    assert (settled.fate, settled.successors, settled.orphan_executions) == (
        {"m1": "dead:ImageNotFound"},
        {"m1": "s2"},
        [],
    )


def test_express_a_record_naming_no_execution_follows_its_successor_by_key() -> None:
    # GIVEN m1's record dead-lettered naming no execution (an earlier delivery sent the
    # letter), that letter sent back as s1 (one attempt higher), classified
    bodies = {"m1": _body(0), "s1": _body(1)}
    records = [
        classifier_record("m1", "ExecutionDeadLettered"),
        classifier_record("s1", "Classified", EXPRESS + "2"),
    ]
    # WHEN the run is settled
    settled = settle_express(bodies, records, [], {"s1": f"execution:{EXPRESS}1"})
    # THEN m1 is done through s1
    assert (settled.fate, settled.successors) == ({"m1": "done"}, {"m1": "s1"})


def test_express_the_letter_of_a_later_attempt_does_not_end_an_earlier_message() -> None:
    # GIVEN m1 dead-lettered naming no execution, and the only letter on the queue is of the
    # same post at attempt 1 (another message's: m1 is attempt 0)
    records = [classifier_record("m1", "ExecutionDeadLettered")]
    letter = workflow_letter(EXPRESS + "2", _body(1))
    # WHEN the run is settled
    settled = settle_express({"m1": _body(0)}, records, [letter])
    # THEN no letter holds m1 (the fallback key includes the attempt), and the letter is
    # accounted for by no record: an orphan
    assert (settled.fate, settled.orphan_executions) == ({"m1": "lost"}, [EXPRESS + "2"])
