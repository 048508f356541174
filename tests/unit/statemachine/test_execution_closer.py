"""ExecutionCloserFunction: every execution that does not succeed ends in exactly one dead letter.

The executions are real (the ClassifyImage ASL in moto's interpreter); the status-change
events are built in AWS's shape from each ended execution, as EventBridge would deliver them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import threading
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.closing import MAX_LETTER_BYTES
from common.messages import ClassifyRequest, reservation_id
from execution_closer import closer as closer_module
from execution_closer.closer import MAX_CAUSE_CHARS, Closer, SweepFailed
from execution_closer.models import CloseOutcome, DetectedBy, EndedExecution, ExecutionStatus
from tests.unit.statemachine.harness import (
    EVENTS,
    REGION,
    RESULTS_TABLE,
    HostReply,
    Workflow,
    image_bytes,
    load_request,
)

CAT = "state_machine_cat_photo.json"
LONG_AGO = 1_000_000_000


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, closer: Closer) -> ModuleType:
    """The handler module, imported under the function's environment, using ``closer``."""
    for name, value in {
        "RESULTS_TABLE": RESULTS_TABLE,
        "OPEN_CLAIMS_INDEX": "OpenClaims",
        "STATE_MACHINE_ARN": closer.settings.state_machine_arn,
        "WORKFLOW_DLQ_URL": closer.settings.workflow_dlq_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    }.items():
        monkeypatch.setenv(name, value)
    module = importlib.import_module("execution_closer.app")
    monkeypatch.setattr(module, "closer", closer)
    monkeypatch.setattr(module, "settings", closer.settings)
    return module


class Context:
    function_name = "tweetlens-execution-closer"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
    aws_request_id = "0f0e0d0c-0b0a-0908-0706-050403020100"

    def get_remaining_time_in_millis(self) -> int:
        # The function's 60 s timeout, untouched: the sweep pages on as long as it needs.
        return 60_000


def fail_with_404(workflow: Workflow, request: ClassifyRequest) -> str:
    workflow.host.serve(HostReply(status=404))
    result = workflow.run(request)
    assert result.status == "FAILED"
    return result.arn


def expected_letter(
    workflow: Workflow,
    request: ClassifyRequest,
    arn: str,
    *,
    error: str,
    status: str,
    state: str | None,
    by: str,
) -> dict[str, Any]:
    cause = workflow.sfn.describe_execution(executionArn=arn).get("cause") or ""
    return {
        "message": request.message.model_dump(),
        "input": None,
        "error": {"Error": error, "Cause": cause[:MAX_CAUSE_CHARS]},
        "execution": arn,
        "status": status,
        "failed_state": state,
        "detected_by": by,
    }


# ------------------------------------------------------------------------ status-change events
def test_failed_execution_is_dead_lettered_and_its_claim_marked_failed(
    workflow: Workflow, closer: Closer, app: ModuleType
) -> None:
    # GIVEN an execution that failed because the image is gone
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)

    # WHEN EventBridge delivers its status-change event to the handler
    response = app.lambda_handler(workflow.status_change_event(arn), Context())

    # THEN one dead letter carries the message, the error, the cause and where it failed
    assert response == {"closed": ["ExecutionDeadLettered"]}
    assert workflow.dead_letters() == [
        expected_letter(
            workflow,
            request,
            arn,
            error="ImageNotFound",
            status="FAILED",
            state="Fetch Image",
            by="status-change-event",
        )
    ]
    # AND the result item is FAILED with the reason, no longer an open claim
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["error"], item["execution"]) == ("FAILED", "ImageNotFound", arn)
    assert "open_claim" not in item


def test_repeated_event_and_sweep_give_one_letter(workflow: Workflow, closer: Closer) -> None:
    # GIVEN a failed execution already dead-lettered from its event
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)
    event = workflow.status_change_event(arn)
    ended = ended_from(event)
    assert closer.close(ended) is CloseOutcome.DEAD_LETTERED

    # WHEN EventBridge delivers the event again and a sweep runs
    again = closer.close(ended)
    swept = closer.sweep()

    # THEN nothing more is sent
    assert again is CloseOutcome.ALREADY_CLOSED
    assert swept == []
    assert len(workflow.dead_letters()) == 1


def test_dead_letter_send_failure_is_retried_without_a_second_letter(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a failed execution, and SQS refusing the first dead-letter send
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)
    ended = ended_from(workflow.status_change_event(arn))
    real_send = closer.sqs.send_message
    calls: list[int] = []

    def flaky_send(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise closer.sqs.exceptions.ClientError(
                {"Error": {"Code": "InternalError", "Message": "try later"}}, "SendMessage"
            )
        return real_send(**kwargs)

    monkeypatch.setattr(closer.sqs, "send_message", flaky_send)

    # WHEN the closer fails (Lambda retries the event) and then runs again
    with pytest.raises(ClientError, match="try later"):
        closer.close(ended)
    outcome = closer.close(ended)

    # THEN exactly one letter exists and the claim is FAILED
    assert outcome is CloseOutcome.DEAD_LETTERED
    assert [letter["execution"] for letter in workflow.dead_letters()] == [arn]
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert item["status"] == "FAILED"


def _refuse_in(
    patched: pytest.MonkeyPatch, client: Any, operation: str, code: str, when: Any = None
) -> list[int]:
    """Make ``client.<operation>`` raise ``code`` (only for calls ``when`` accepts) until
    ``patched`` is undone; the refused calls are counted in the returned list."""
    real = getattr(client, operation)
    refused: list[int] = []

    def refusing(**kwargs: Any) -> Any:
        if when is None or when(kwargs):
            refused.append(1)
            raise client.exceptions.ClientError(
                {"Error": {"Code": code, "Message": "refused by the test"}}, operation
            )
        return real(**kwargs)

    patched.setattr(client, operation, refusing)
    return refused


def _open_claim(workflow: Workflow, url: str) -> tuple[str, str | None]:
    item = workflow.result_item(url)
    assert item is not None
    return str(item["status"]), item.get("open_claim")


def test_letter_that_cannot_be_sent_leaves_the_claim_open_for_the_sweep(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a failed execution whose lease has expired, and SQS refusing every dead letter
    request = load_request(CAT).model_copy(update={"lease_expires_at": LONG_AGO})
    arn = fail_with_404(workflow, request)
    ended = ended_from(workflow.status_change_event(arn))
    with monkeypatch.context() as patched:
        refused = _refuse_in(patched, closer.sqs, "send_message", "InternalError")

        # WHEN the event's close fails (and Lambda's async retries fail alike)
        for _ in range(3):
            with pytest.raises(ClientError, match="refused by the test"):
                closer.close(ended)

        # THEN no letter exists and the claim is still open, in the sweep's index: a later post
        # of the photo may still be settled as a duplicate of this failure (the classifier
        # describes the claim's execution), so the sweep's letter below is what keeps the
        # failed message from being lost
        assert len(refused) == 3
        assert workflow.dead_letters() == []
        assert _open_claim(workflow, request.message.url) == ("IN_PROGRESS", "OPEN")

    # AND once SQS accepts letters again the sweep finds the claim, sends its one letter and
    # closes it
    assert closer.sweep() == [CloseOutcome.DEAD_LETTERED]
    assert [letter["execution"] for letter in workflow.dead_letters()] == [arn]
    assert _open_claim(workflow, request.message.url) == ("FAILED", None)


def test_marker_that_cannot_be_written_after_the_letter_leaves_the_claim_open(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a failed execution, and DynamoDB refusing the write that marks its letter sent
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)
    ended = ended_from(workflow.status_change_event(arn))
    with monkeypatch.context() as patched:
        _refuse_in(
            patched,
            closer.dynamodb,
            "update_item",
            "InternalServerError",
            when=lambda call: call["UpdateExpression"] == "SET letter = :sent",
        )

        # WHEN the close sends the letter and then fails
        with pytest.raises(ClientError, match="refused by the test"):
            closer.close(ended)

        # THEN the claim is still open: not closed before its letter is known to be sent
        assert _open_claim(workflow, request.message.url) == ("IN_PROGRESS", "OPEN")

    # AND the retried close sends the letter again (the one window letters.py keeps: a copy,
    # never a loss), marks it and closes the claim; a third close changes nothing
    assert closer.close(ended) is CloseOutcome.DEAD_LETTERED
    assert closer.close(ended) is CloseOutcome.ALREADY_CLOSED
    assert [letter["execution"] for letter in workflow.dead_letters()] == [arn, arn]
    assert _open_claim(workflow, request.message.url) == ("FAILED", None)


def test_claim_that_cannot_be_closed_after_the_letter_is_closed_by_the_retry(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a failed execution, and DynamoDB refusing the write that marks its claim FAILED
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)
    ended = ended_from(workflow.status_change_event(arn))
    with monkeypatch.context() as patched:
        _refuse_in(
            patched,
            closer.dynamodb,
            "update_item",
            "InternalServerError",
            when=lambda call: ":failed" in call.get("ExpressionAttributeValues", {}),
        )

        # WHEN the close sends the letter, marks it sent and then fails
        with pytest.raises(ClientError, match="refused by the test"):
            closer.close(ended)
        assert _open_claim(workflow, request.message.url) == ("IN_PROGRESS", "OPEN")

    # AND Lambda retries it
    outcome = closer.close(ended)

    # THEN the retry finds the letter sent, sends no other, and closes the claim
    assert outcome is CloseOutcome.ALREADY_CLOSED
    assert [letter["execution"] for letter in workflow.dead_letters()] == [arn]
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], item["error"], item["execution"], "open_claim" in item) == (
        "FAILED",
        "ImageNotFound",
        arn,
        False,
    )


def test_timed_out_execution_is_dead_lettered(workflow: Workflow, closer: Closer) -> None:
    # GIVEN a workflow whose timeout elapses while the image host hangs
    definition = json.loads(
        workflow.sfn.describe_state_machine(stateMachineArn=workflow.state_machine_arn)[
            "definition"
        ]
    )
    definition["TimeoutSeconds"] = 1
    workflow.sfn.update_state_machine(
        stateMachineArn=workflow.state_machine_arn, definition=json.dumps(definition)
    )
    release = threading.Event()
    workflow.host.on_open = lambda: release.wait(5) and None
    workflow.host.serve(HostReply(body=image_bytes(".jpg"), headers={"content-type": "image/jpeg"}))
    request = load_request(CAT)

    # WHEN the execution times out and its event reaches the closer
    result = workflow.run(request)
    release.set()
    outcome = closer.close(ended_from(workflow.status_change_event(result.arn)))

    # THEN it is dead-lettered as TIMED_OUT with States.Timeout, and its claim is FAILED
    assert result.status == "TIMED_OUT"
    assert outcome is CloseOutcome.DEAD_LETTERED
    [letter] = workflow.dead_letters()
    assert (letter["status"], letter["error"]["Error"], letter["message"]) == (
        "TIMED_OUT",
        "States.Timeout",
        request.message.model_dump(),
    )
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert item["status"] == "FAILED"


def test_aborted_execution_is_dead_lettered(workflow: Workflow, closer: Closer) -> None:
    # GIVEN an execution stopped by an operator while it fetches
    request = load_request(CAT)
    fetching = threading.Event()
    release = threading.Event()

    def hold_fetch() -> None:
        fetching.set()
        release.wait(5)

    workflow.host.on_open = hold_fetch
    workflow.host.serve(HostReply(status=404))
    arn = workflow.start(request)
    assert fetching.wait(10)
    workflow.sfn.stop_execution(executionArn=arn, error="Operator", cause="stuck host")
    release.set()
    result = workflow.wait(arn)

    # WHEN its event reaches the closer
    outcome = closer.close(ended_from(workflow.status_change_event(arn)))

    # THEN it is dead-lettered as ABORTED with the operator's error and cause
    assert result.status == "ABORTED"
    assert outcome is CloseOutcome.DEAD_LETTERED
    [letter] = workflow.dead_letters()
    assert (letter["status"], letter["error"], letter["message"]) == (
        "ABORTED",
        {"Error": "Operator", "Cause": "stuck host"},
        request.message.model_dump(),
    )


def test_malformed_hand_started_input_is_dead_lettered_as_it_came(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN a hand-started execution whose input is no ClassifyRequest
    result = workflow.run_raw("hand-started", {"message": {"url": 42}, "note": "typo"})

    # WHEN its event reaches the closer
    outcome = closer.close(ended_from(workflow.status_change_event(result.arn)))

    # THEN the letter keeps the input as it came, with no message to replay
    assert outcome is CloseOutcome.DEAD_LETTERED
    [letter] = workflow.dead_letters()
    assert (letter["message"], letter["input"], letter["execution"]) == (
        None,
        {"message": {"url": 42}, "note": "typo"},
        result.arn,
    )
    assert letter["failed_state"] == "Claim Image"


def test_event_without_input_reads_it_from_the_execution(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN a status-change event whose input was left out (inputDetails.included false)
    request = load_request(CAT)
    arn = fail_with_404(workflow, request)
    event = workflow.status_change_event(arn)
    event["detail"]["input"] = None
    event["detail"]["inputDetails"] = {"included": False}

    # WHEN the closer handles it
    closer.close(ended_from(event))

    # THEN the message is recovered from DescribeExecution
    [letter] = workflow.dead_letters()
    assert letter["message"] == request.message.model_dump()


# ------------------------------------------------------------------------ the sweep
def test_sweep_closes_an_expired_claim_whose_event_was_lost(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN a failed execution whose status-change event never arrived, its lease expired
    request = load_request(CAT).model_copy(update={"lease_expires_at": LONG_AGO})
    arn = fail_with_404(workflow, request)

    # WHEN the scheduled sweep runs
    outcomes = closer.sweep()

    # THEN it closes that execution the same way: one letter, claim FAILED
    assert outcomes == [CloseOutcome.DEAD_LETTERED]
    [letter] = workflow.dead_letters()
    assert (letter["execution"], letter["detected_by"], letter["message"]) == (
        arn,
        "lease-sweep",
        request.message.model_dump(),
    )
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert item["status"] == "FAILED"


def test_sweep_leaves_unexpired_and_done_claims_alone(workflow: Workflow, closer: Closer) -> None:
    # GIVEN a failed execution whose lease has not expired, and a DONE image
    fail_with_404(workflow, load_request(CAT).model_copy(update={"lease_expires_at": 2**40}))
    workflow.put_result_item(
        {"pk": "https://pbs.twimg.com/media/done.jpg", "sk": "RESULT", "status": "DONE"}
    )

    # WHEN the sweep runs
    outcomes = closer.sweep()

    # THEN nothing is closed: the lease is still the execution's
    assert outcomes == []
    assert workflow.dead_letters() == []


def test_sweep_closes_a_claim_whose_execution_cannot_be_described(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN an expired claim left by an execution Step Functions does not know (e.g. Express)
    request = load_request(CAT)
    ghost = workflow.state_machine_arn.replace(":stateMachine:", ":execution:") + ":ghost-1"
    workflow.put_result_item(
        {
            "pk": request.message.url,
            "sk": "RESULT",
            "status": "IN_PROGRESS",
            "execution": ghost,
            "lease_expires_at": Decimal(LONG_AGO),
            "open_claim": "OPEN",
            "message": request.message.model_dump_json(),
        }
    )

    # WHEN the sweep runs
    closer.sweep()

    # THEN the claim's own copy of the message goes to the dead-letter queue
    [letter] = workflow.dead_letters()
    assert (letter["error"]["Error"], letter["message"]) == (
        "LeaseExpired",
        request.message.model_dump(),
    )
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert item["status"] == "FAILED"


def test_sweep_closes_an_expired_reservation_without_describing_it(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN an EXPRESS classifier reserved the image and died before its execution started:
    # the reservation's lease expired and no execution ever owned the claim
    request = load_request(CAT)
    reservation = reservation_id("5e0c1a7b-0b1d-4f4e-9c3a-00000000e003")
    workflow.put_result_item(
        {
            "pk": request.message.url,
            "sk": "RESULT",
            "status": "IN_PROGRESS",
            "execution": reservation,
            "lease_expires_at": Decimal(LONG_AGO),
            "open_claim": "OPEN",
            "message": request.message.model_dump_json(),
        }
    )
    described = _count_describes(closer)

    # WHEN the sweep runs
    outcomes = closer.sweep()

    # THEN it closes the reservation like any expired claim: one letter with the reserved
    # message, claim FAILED and out of the index; there was no execution to ask about
    assert outcomes == [CloseOutcome.DEAD_LETTERED]
    [letter] = workflow.dead_letters()
    assert (
        letter["execution"],
        letter["error"]["Error"],
        letter["detected_by"],
        letter["failed_state"],
        letter["message"],
    ) == (reservation, "LeaseExpired", "lease-sweep", None, request.message.model_dump())
    item = workflow.result_item(request.message.url)
    assert item is not None
    assert (item["status"], "open_claim" in item) == ("FAILED", False)
    assert described == []

    # AND a second sweep finds nothing more to close
    assert closer.sweep() == []


def _expired_reservation(workflow: Workflow, url: str, message_id: str, lease: int) -> str:
    """An EXPRESS reservation whose classifier died: open, its lease expired at ``lease``."""
    request = load_request(CAT)
    message = request.message.model_copy(update={"url": url})
    reservation = reservation_id(message_id)
    workflow.put_result_item(
        {
            "pk": url,
            "sk": "RESULT",
            "status": "IN_PROGRESS",
            "execution": reservation,
            "lease_expires_at": Decimal(lease),
            "open_claim": "OPEN",
            "message": message.model_dump_json(),
        }
    )
    return reservation


def test_sweep_closes_the_other_claims_when_one_letter_is_refused_for_good(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two expired claims, the older one's letter refused by SQS at every send
    first_url = "https://pbs.twimg.com/media/refused.jpg"
    second_url = "https://pbs.twimg.com/media/sendable.jpg"
    first = _expired_reservation(workflow, first_url, "5e0c1a7b-0b1d-4f4e-9c3a-00000000e101", 10)
    second = _expired_reservation(workflow, second_url, "5e0c1a7b-0b1d-4f4e-9c3a-00000000e102", 20)
    closer.metrics.clear_metrics()
    with monkeypatch.context() as patched:
        refused = _refuse_in(
            patched,
            closer.sqs,
            "send_message",
            "InvalidParameterValue",
            when=lambda call: first in call["MessageBody"],
        )

        # WHEN the sweep runs
        with pytest.raises(SweepFailed, match="1 expired claim\\(s\\) could not be closed"):
            closer.sweep()

        # THEN the refused claim stays open and the one after it is closed with its letter
        assert len(refused) == 1
        assert [letter["execution"] for letter in workflow.dead_letters()] == [second]
        assert _open_claim(workflow, first_url) == ("IN_PROGRESS", "OPEN")
        assert _open_claim(workflow, second_url) == ("FAILED", None)
        counted = {name: sum(m["Value"]) for name, m in closer.metrics.metric_set.items()}
        assert counted == {"ExecutionDeadLettered": 1, "ExpiredClaimCloseFailed": 1}

    # AND once SQS accepts it, the next tick closes the refused claim alone
    assert closer.sweep() == [CloseOutcome.DEAD_LETTERED]
    assert [letter["execution"] for letter in workflow.dead_letters()] == [first]
    assert _open_claim(workflow, first_url) == ("FAILED", None)


def _ended_with(workflow: Workflow, *, cause: str, raw_input: str) -> EndedExecution:
    """A hand-started execution's end whose input is no ClassifyRequest (kept raw)."""
    arn = workflow.state_machine_arn.replace(":stateMachine:", ":execution:") + ":by-hand"
    return EndedExecution(
        arn=arn,
        status=ExecutionStatus.FAILED,
        error="States.Runtime",
        cause=cause,
        input=raw_input,
        detected_by=DetectedBy.STATUS_CHANGE_EVENT,
    )


def test_letter_larger_than_sqs_accepts_is_cut_to_fit(workflow: Workflow, closer: Closer) -> None:
    # GIVEN an execution whose raw input takes 380,000 bytes: under the closer's character cap
    # (190,000 characters), but two bytes each
    raw_input = "\u00e9" * 190_000
    ended = _ended_with(workflow, cause="bad input", raw_input=raw_input)

    # WHEN it is closed
    outcome = closer.close(ended)

    # THEN the letter is sent within SQS's 256 KiB (to the character), keeping the start of
    # the input
    assert outcome is CloseOutcome.DEAD_LETTERED
    received = workflow.sqs.receive_message(QueueUrl=workflow.dead_letter_queue_url)
    [body] = [message["Body"] for message in received["Messages"]]
    letter = json.loads(body)
    assert MAX_LETTER_BYTES - 2 <= len(body.encode()) <= MAX_LETTER_BYTES
    assert letter["input"] == raw_input[: len(letter["input"])]
    assert letter["error"] == {"Error": "States.Runtime", "Cause": "bad input"}


def test_letter_with_characters_sqs_refuses_is_sent_with_them_replaced(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN an execution whose cause holds a lone surrogate and U+FFFE, and whose input a NUL
    ended = _ended_with(workflow, cause="bad\ud800byte\ufffe.", raw_input="a\x00b")

    # WHEN it is closed
    outcome = closer.close(ended)

    # THEN the letter is sent: the refused characters of the cause became "?", and the NUL
    # travels escaped in the JSON (which SQS accepts), so the input reads back as it was
    assert outcome is CloseOutcome.DEAD_LETTERED
    [letter] = workflow.dead_letters()
    assert (letter["error"]["Cause"], letter["input"]) == ("bad?byte?.", "a\x00b")


def test_sweep_closes_an_expired_express_claim_without_describing_it(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN an expired claim owned by an Express execution (the classifier died while it ran):
    # DescribeExecution does not serve Express ARNs, and the closer's role may describe only
    # the state machine's `execution:` ARNs, so asking would fail the claim at every tick
    request = load_request(CAT)
    express = (
        workflow.state_machine_arn.replace(":stateMachine:", ":express:")
        + ":0123abcd-5e0c1a7b-0b1d-4f4e-9c3a-00000000e201:run-1"
    )
    workflow.put_result_item(
        {
            "pk": request.message.url,
            "sk": "RESULT",
            "status": "IN_PROGRESS",
            "execution": express,
            "lease_expires_at": Decimal(LONG_AGO),
            "open_claim": "OPEN",
            "message": request.message.model_dump_json(),
        }
    )
    asked = _count_describes(closer)

    # WHEN the sweep runs
    outcomes = closer.sweep()

    # THEN Step Functions is not asked (no DescribeExecution, no history): the lease is the
    # evidence, and the claim's copy of the message is dead-lettered as LeaseExpired
    assert asked == []
    assert outcomes == [CloseOutcome.DEAD_LETTERED]
    [letter] = workflow.dead_letters()
    assert (
        letter["execution"],
        letter["error"],
        letter["failed_state"],
        letter["detected_by"],
        letter["message"],
    ) == (
        express,
        {
            "Error": "LeaseExpired",
            "Cause": "the claim's lease expired; an Express execution cannot be described",
        },
        None,
        "lease-sweep",
        request.message.model_dump(),
    )
    assert _open_claim(workflow, request.message.url) == ("FAILED", None)


def _expired_claims(workflow: Workflow, count: int) -> list[str]:
    """``count`` expired reservations, the n-th (from 1) with lease n: the sweep's order."""
    return [
        _expired_reservation(
            workflow,
            f"https://pbs.twimg.com/media/claim-{index:03d}.jpg",
            f"5e0c1a7b-0b1d-4f4e-9c3a-{index:012d}",
            index,
        )
        for index in range(1, count + 1)
    ]


def test_a_full_page_of_claims_failing_at_every_tick_does_not_block_the_next(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 101 expired claims, the 100 oldest (a whole page of the sweep's query, SWEEP_LIMIT
    # 100) with letters SQS refuses at every send
    assert closer.settings.sweep_limit == 100
    claims = _expired_claims(workflow, 101)
    refused_claims = set(claims[:100])
    with monkeypatch.context() as patched:
        refused = _refuse_in(
            patched,
            closer.sqs,
            "send_message",
            "InvalidParameterValue",
            when=lambda call: json.loads(call["MessageBody"])["execution"] in refused_claims,
        )

        # WHEN the sweep runs
        with pytest.raises(SweepFailed, match="100 expired claim\\(s\\) could not be closed"):
            closer.sweep()

    # THEN it paged on past the failing page: the 101st claim is closed with its letter
    assert len(refused) == 100
    assert [letter["execution"] for letter in workflow.dead_letters()] == [claims[100]]
    assert _open_claim(workflow, "https://pbs.twimg.com/media/claim-101.jpg") == ("FAILED", None)
    assert _open_claim(workflow, "https://pbs.twimg.com/media/claim-001.jpg") == (
        "IN_PROGRESS",
        "OPEN",
    )


def _paging(closer: Closer, sweep_limit: int) -> tuple[Closer, list[int]]:
    """``closer`` reading ``sweep_limit`` claims a page; the sizes of the pages it reads."""
    pages: list[int] = []
    real = closer.dynamodb

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def query(self, **kwargs: Any) -> Any:
            found = real.query(**kwargs)
            pages.append(len(found.get("Items", [])))
            return found

    settings = closer.settings.model_copy(update={"sweep_limit": sweep_limit})
    return dataclasses.replace(closer, settings=settings, dynamodb=Counting()), pages


def test_sweep_stops_paging_at_its_page_cap(
    workflow: Workflow, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 7 expired claims, read 2 a page, and a cap of 3 pages a tick
    _expired_claims(workflow, 7)
    monkeypatch.setattr(closer_module, "MAX_SWEEP_PAGES", 3)
    paging, pages = _paging(closer, sweep_limit=2)

    # WHEN the sweep runs, then runs again
    first = paging.sweep()
    second = paging.sweep()

    # THEN the first tick closes the 6 claims of its 3 pages, the next tick the last one
    assert (len(first), pages[:3]) == (6, [2, 2, 2])
    assert (len(second), pages[3:]) == (1, [1])
    assert len(workflow.dead_letters()) == 7


def test_sweep_starts_no_claim_once_the_invocation_runs_short_of_time(
    workflow: Workflow, closer: Closer
) -> None:
    # GIVEN 5 expired claims, read 2 a page, and an invocation whose time left falls under the
    # 10 s the sweep keeps in hand after 3 claims (checked before each one)
    _expired_claims(workflow, 5)
    paging, pages = _paging(closer, sweep_limit=2)
    time_left = iter([30_000, 20_000, 11_000, 9_000])

    # WHEN the sweep runs
    outcomes = paging.sweep(lambda: next(time_left))

    # THEN it closes 3 claims, mid-page, and leaves the other 2 for the next tick
    assert (len(outcomes), pages) == (3, [2, 2])
    assert paging.sweep() == [CloseOutcome.DEAD_LETTERED] * 2


def _count_describes(closer: Closer) -> list[str]:
    """The executions the closer asks Step Functions about, from now on."""
    asked: list[str] = []
    real = closer.stepfunctions

    class Counting:
        def __getattr__(self, name: str) -> Any:
            attribute = getattr(real, name)
            if name not in {"describe_execution", "get_execution_history", "get_paginator"}:
                return attribute

            def call(*args: Any, **kwargs: Any) -> Any:
                asked.append(str(kwargs.get("executionArn", name)))
                return attribute(*args, **kwargs)

            return call

    object.__setattr__(closer, "stepfunctions", Counting())
    return asked


# ------------------------------------------------------------------------ the handler
def test_scheduled_tick_runs_the_sweep(workflow: Workflow, app: ModuleType) -> None:
    # GIVEN the schedule's sample event and nothing to sweep
    event = json.loads((EVENTS / "execution_closer_sweep.json").read_text(encoding="utf-8"))

    # WHEN the handler receives it
    # THEN it sweeps and closes nothing
    assert app.lambda_handler(event, Context()) == {"closed": []}


@pytest.mark.no_application_metrics
def test_succeeded_execution_needs_no_letter(workflow: Workflow, app: ModuleType) -> None:
    # GIVEN the sample event turned into a SUCCEEDED one of this state machine
    event = json.loads((EVENTS / "eventbridge_execution_failed.json").read_text(encoding="utf-8"))
    event["detail"]["stateMachineArn"] = workflow.state_machine_arn
    event["detail"]["executionArn"] = (
        workflow.state_machine_arn.replace(":stateMachine:", ":execution:")
        + ":"
        + event["detail"]["name"]
    )
    event["detail"]["status"] = "SUCCEEDED"

    # WHEN the handler receives it
    # THEN nothing is dead-lettered
    assert app.lambda_handler(event, Context()) == {"closed": []}
    assert workflow.dead_letters() == []


@pytest.mark.no_application_metrics
@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "detail-type: Field required"),
        ({"detail-type": "Scheduled Event", "source": "aws.s3"}, "source: Input should be"),
        (
            {"detail-type": "Step Functions Execution Status Change", "source": "aws.states"},
            "detail: Field required",
        ),
    ],
    ids=["empty", "schedule-from-elsewhere", "status-change-without-detail"],
)
def test_other_events_are_refused_by_name(
    app: ModuleType, event: dict[str, Any], problem: str
) -> None:
    # GIVEN an event that is neither a status change nor the schedule's tick
    # WHEN the handler receives it
    # THEN it fails with InvalidEvent naming the problem
    with pytest.raises(app.InvalidEvent, match=problem):
        app.lambda_handler(event, Context())


def ended_from(event: dict[str, Any]) -> Any:
    """What the handler builds from a status-change event."""
    from execution_closer.models import (
        DEFAULT_ERRORS,
        DetectedBy,
        EndedExecution,
        StatusChangeEvent,
    )

    change = StatusChangeEvent.model_validate(event)
    detail = change.detail
    return EndedExecution(
        arn=detail.executionArn,
        status=detail.status,
        error=detail.error or DEFAULT_ERRORS[detail.status],
        cause=detail.cause or "",
        input=detail.input,
        detected_by=DetectedBy.STATUS_CHANGE_EVENT,
    )
