"""The demo's accounting settles each accepted message to one end and names the others.

Records are built as the pipeline writes them (the classifier's ``record_outcome``, the
workflow and route dead letters); no cloud is needed to settle them.
"""

from __future__ import annotations

import json
from collections import Counter

from tests.settlement_kit import CATS_QUEUE, classifier_record, rejection_letter, workflow_letter
from tweetlens.accounting import (
    AcceptedMessage,
    Accounting,
    ClassifierRecord,
    CopiedMessage,
    ExecutionOutcome,
    UnsettledMessage,
    account,
    record_outcomes,
)
from tweetlens.dlq import DeadLetter
from tweetlens.settlement import settle_messages

ROUTES = {CATS_QUEUE: "cats", "CatsDeadLetterQueue": "cats"}
URL = "https://pbs.twimg.com/media/Fcat.jpg"
EXPRESS_ARN = "arn:aws:states:us-east-1:123456789012:express:sm:digest-m1:1111"
STANDARD_NAME = "digest-1"
STANDARD_ARN = f"arn:aws:states:us-east-1:123456789012:execution:sm:{STANDARD_NAME}"


def _message(post_id: str) -> AcceptedMessage:
    return AcceptedMessage(
        "cats", {"url": URL, "post_id": post_id, "media_key": f"3_{post_id}", "route": "cats"}
    )


def _record(message_id: str, outcome: str, execution: str = "") -> ClassifierRecord:
    return classifier_record(message_id, outcome, execution)


def _workflow_letter(
    execution: str, post_id: str, error: str = "ImageNotFound", *, copy: int = 0
) -> DeadLetter:
    return workflow_letter(execution, _message(post_id).body, error, copy=copy)


def _moved_letter(message_id: str) -> DeadLetter:
    """A route letter SQS moved after maxReceiveCount: it keeps the message's id."""
    return DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id=message_id,
        receipt_handle="r",
        body=json.dumps(dict(_message("1").body)),
        error="MaxReceiveCountExceeded",
        reason="the classifier failed on it on every receive (see its logs)",
        route="cats",
        receive_count=5,
    )


def _account(
    accepted: dict[str, AcceptedMessage] | None,
    records: list[ClassifierRecord],
    letters: list[DeadLetter],
    *,
    executions: list[ExecutionOutcome] | None = None,
    express: bool = True,
    published: int = 2,
) -> Accounting:
    listed = executions or []
    return account(
        published={"cats": published},
        outcomes=record_outcomes(records),
        executions=listed,
        dead_letters=letters,
        route_of_source=ROUTES,
        accepted=accepted,
        settlement=None
        if accepted is None
        else settle_messages(
            {message_id: m.body for message_id, m in accepted.items()},
            records,
            listed,
            letters,
            express=express,
        ),
    )


def _figures(tally: Accounting) -> tuple[int, int, int, Counter[str], int]:
    cats = tally.routes["cats"]
    return cats.published, cats.classified, cats.duplicates, cats.dead_letters, cats.lost


def test_a_lost_message_hidden_by_a_double_count_on_its_route_is_named() -> None:
    # GIVEN two published messages: m1 logged Classified and yet moved to the route DLQ by SQS,
    # m2 never logged by the classifier
    records = [_record("m1", "Classified", EXPRESS_ARN)]
    letters = [_moved_letter("m1")]
    accepted = {"m1": _message("1"), "m2": _message("2")}

    # WHEN only the route's totals are compared (no record of the accepted messages)
    by_route = _account(None, records, letters)
    # THEN the double count hides the lost message
    assert _figures(by_route) == (2, 1, 0, Counter({"MaxReceiveCountExceeded": 1}), 0)

    # WHEN each accepted message is settled on its own
    tally = _account(accepted, records, letters)

    # THEN m1 counts once (its letter), m2 is lost, and both are named
    assert _figures(tally) == (2, 0, 0, Counter({"MaxReceiveCountExceeded": 1}), 1)
    assert tally.unsettled == [
        UnsettledMessage("m2", "cats", "2", URL),
        UnsettledMessage("m1", "cats", "1", URL, ("dead:MaxReceiveCountExceeded", "done")),
    ]
    assert tally.problems() == [
        "route cats: 1 message(s) lost (m2)",
        "route cats: 1 message(s) counted twice (m1)",
    ]


def test_two_letters_for_one_execution_are_a_copy_and_the_lost_message_is_named() -> None:
    # GIVEN (STANDARD) m1 started an execution that failed and was dead-lettered twice (a
    # closer killed between sending the letter and recording it sent it again), and m2 left
    # no record
    records = [_record("m1", "ExecutionStarted", STANDARD_NAME)]
    failed = ExecutionOutcome(STANDARD_ARN, STANDARD_NAME, "cats", URL, "FAILED", "ImageNotFound")
    letters = [_workflow_letter(STANDARD_ARN, "1"), _workflow_letter(STANDARD_ARN, "1", copy=1)]
    accepted = {"m1": _message("1"), "m2": _message("2")}

    # WHEN each accepted message is settled
    tally = _account(accepted, records, letters, executions=[failed], express=False)

    # THEN the second letter is a recognised copy: m1 ends once, in its letter, and is named
    # as a copy, not counted twice; m2 is lost, and one failed execution has one letter
    assert _figures(tally) == (2, 0, 0, Counter({"ImageNotFound": 1}), 1)
    assert tally.unsettled == [UnsettledMessage("m2", "cats", "2", URL)]
    assert tally.copies == [
        CopiedMessage("m1", "cats", "1", URL, "dead:ImageNotFound", ("letter-st-1-1",))
    ]
    assert (tally.letter_copies, tally.workflow_dead_letters) == (1, 1)
    assert tally.problems() == ["route cats: 1 message(s) lost (m2)"]


def test_a_rejected_message_also_moved_by_sqs_is_a_copy_once() -> None:
    # GIVEN (EXPRESS) m1 rejected by the classifier (its letter names it) and moved to the same
    # DLQ by SQS's redrive policy too (its worker was killed before recording the rejection)
    records = [_record("m1", "Rejected")]
    letters = [rejection_letter("m1", letter_id="L1"), _moved_letter("m1")]

    # WHEN it is settled
    tally = _account({"m1": _message("1")}, records, letters, published=1)

    # THEN it ends once, in the rejection (which says why), and the moved message is its copy
    assert _figures(tally) == (1, 0, 0, Counter({"InvalidMessage": 1}), 0)
    assert tally.unsettled == []
    assert tally.copies == [CopiedMessage("m1", "cats", "1", URL, "dead:InvalidMessage", ("m1",))]
    assert tally.problems() == []


def test_a_copied_letter_does_not_excuse_a_second_end() -> None:
    # GIVEN (EXPRESS) m1 logged Classified, and yet moved by SQS to the route DLQ and also
    # rejected there: two route letters (one a copy) besides its classification
    records = [_record("m1", "Classified", EXPRESS_ARN)]
    letters = [rejection_letter("m1", letter_id="L1"), _moved_letter("m1")]

    # WHEN it is settled
    tally = _account({"m1": _message("1")}, records, letters, published=1)

    # THEN the copy is recognised, and the message is still counted twice: done and a letter
    assert [(m.message_id, m.ends) for m in tally.unsettled] == [
        ("m1", ("dead:InvalidMessage", "done"))
    ]
    assert [m.copies for m in tally.copies] == [("m1",)]
    assert tally.problems() == ["route cats: 1 message(s) counted twice (m1)"]


def test_route_totals_count_a_copied_letter_once() -> None:
    # GIVEN (STANDARD, no record of the accepted messages: the console) one failed execution
    # with its letter sent twice
    failed = ExecutionOutcome(STANDARD_ARN, STANDARD_NAME, "cats", URL, "FAILED", "ImageNotFound")
    letters = [_workflow_letter(STANDARD_ARN, "1"), _workflow_letter(STANDARD_ARN, "1", copy=1)]
    records = [_record("m1", "ExecutionStarted", STANDARD_NAME)]

    # WHEN the route's totals are compared
    tally = _account(None, records, letters, executions=[failed], express=False, published=1)

    # THEN the copy is neither a second dead letter of the route nor a letter too many
    assert _figures(tally) == (1, 0, 0, Counter({"ImageNotFound": 1}), 0)
    assert (tally.letter_copies, tally.failed_executions, tally.workflow_dead_letters) == (1, 1, 1)
    assert tally.problems() == []


def test_a_message_both_classified_and_dead_lettered_is_counted_twice() -> None:
    # GIVEN (EXPRESS) one message logged Classified, then ExecutionDeadLettered with its letter
    records = [
        _record("m1", "Classified", EXPRESS_ARN),
        _record("m1", "ExecutionDeadLettered", EXPRESS_ARN),
    ]
    letters = [_workflow_letter(EXPRESS_ARN, "1")]

    # WHEN it is settled
    tally = _account({"m1": _message("1")}, records, letters, published=1)

    # THEN it counts once, as classified, and is named with both ends
    assert _figures(tally) == (1, 1, 0, Counter(), 0)
    assert [(m.message_id, m.ends) for m in tally.unsettled] == [("m1", ("done", "dead"))]
    assert tally.problems() == ["route cats: 1 message(s) counted twice (m1)"]


def test_a_message_logged_as_started_without_its_execution_is_lost() -> None:
    # GIVEN (STANDARD) a message whose record names an execution Step Functions does not list
    records = [_record("m1", "ExecutionStarted", STANDARD_NAME)]

    # WHEN it is settled
    tally = _account({"m1": _message("1")}, records, [], express=False, published=1)

    # THEN the message is lost and the execution it names belongs to none
    assert _figures(tally) == (1, 0, 0, Counter(), 1)
    assert tally.unsettled == [UnsettledMessage("m1", "cats", "1", URL)]
    assert tally.problems() == [
        "route cats: 1 message(s) lost (m1)",
        f"1 execution(s) started for no message ({STANDARD_NAME})",
    ]


def test_the_producer_reporting_other_than_sqs_accepted_is_a_problem() -> None:
    # GIVEN a producer that says it published 3 messages, of which SQS accepted 2, each settled
    records = [_record("m1", "Classified", EXPRESS_ARN), _record("m2", "Duplicate")]

    # WHEN they are settled
    tally = _account({"m1": _message("1"), "m2": _message("2")}, records, [], published=3)

    # THEN the route's figures are SQS's, and the difference is named
    assert _figures(tally) == (2, 1, 1, Counter(), 0)
    assert tally.problems() == ["route cats: the producer reported 3 published, SQS accepted 2"]


def test_every_message_ending_once_leaves_nothing_to_name() -> None:
    # GIVEN (EXPRESS) one message classified, a copy handled twice, one dead-lettered
    records = [
        _record("m1", "Classified", EXPRESS_ARN),
        _record("m2", "InFlight", EXPRESS_ARN),
        _record("m2", "Duplicate"),
        _record("m3", "ExecutionDeadLettered", EXPRESS_ARN[:-4] + "3333"),
    ]
    letters = [_workflow_letter(EXPRESS_ARN[:-4] + "3333", "3")]
    accepted = {"m1": _message("1"), "m2": _message("2"), "m3": _message("3")}

    # WHEN they are settled
    tally = _account(accepted, records, letters, published=3)

    # THEN each counts once and no problem is found
    assert _figures(tally) == (3, 1, 1, Counter({"ImageNotFound": 1}), 0)
    assert (tally.unsettled, tally.problems()) == ([], [])


def test_an_unsettled_message_reads_as_one_line() -> None:
    # GIVEN a lost message and one counted twice
    lost = UnsettledMessage("m2", "cats", "2", URL)
    twice = UnsettledMessage("m1", "dogs", "", "", ("done", "dead:ImageNotFound"))
    # WHEN they are described
    # THEN each line names the message, its post and photo, and what was found
    assert lost.describe() == f"lost: cats message m2 (post 2, {URL}): no end"
    assert twice.describe() == (
        "counted twice: dogs message m1 (post ?, no url): done + dead:ImageNotFound"
    )


def test_a_copied_message_reads_as_one_line() -> None:
    # GIVEN a message whose letter was sent three times
    copied = CopiedMessage("m1", "cats", "1", URL, "dead:ImageNotFound", ("L2", "L3"))
    # WHEN it is described
    # THEN the line names the message, its one end and the copies, counted once
    assert copied.describe() == (
        f"copy: cats message m1 (post 1, {URL}): dead:ImageNotFound, its letter sent 3 times "
        "(copies L2, L3); counted once"
    )
