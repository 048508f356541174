"""Executions that do not succeed, on the deployed template: each ends in one dead letter, and
its message is classified once when it comes back (issue: "no execution ends without a record").

The image host's ``/faults/hold-<ms>-<key>`` route trickles its first answer for a key slowly
and answers at once afterwards: an execution is held in Fetch Image long enough to be stopped,
and the next attempt succeeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from moto.core.exceptions import JsonRESTError
from moto.sqs.responses import SQSResponse

from common.messages import url_digest
from tests.integration.pipeline_kit import (
    PostSpec,
    Recordings,
    dead_letters_of,
    execution_arn,
    execution_name,
    executions_of,
    publish,
    record_outcomes,
    result_item,
    route_message,
    settle,
)
from tweetlens.demo_stream import Recording
from tweetlens.dlq import WORKFLOW_DLQ, redrive
from tweetlens.localcloud import PatchSet
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration


SWEEP_RULE = "ExecutionCloserFunctionSweepExpiredClaims"
HOLD_MS = 1_500
WAIT_SECONDS = 30.0


def hold_url(pipeline: LocalPipeline, key: str) -> str:
    return pipeline.images.fault_url(f"hold-{HOLD_MS}-{key}")


def wait_for_fetch(pipeline: LocalPipeline, url: str) -> None:
    """Until the image host has been asked for ``url`` (the execution is in Fetch Image)."""
    path = url.removeprefix(pipeline.images.base_url)
    deadline = time.monotonic() + WAIT_SECONDS
    while pipeline.images.request_count(path) == 0:
        assert time.monotonic() < deadline, f"nobody fetched {path}"
        time.sleep(0.05)


def stop(stack: DeployedStack, url: str, sequence: int = 1) -> str:
    arn = execution_arn(stack, execution_name(url, sequence))
    stack.client("stepfunctions").stop_execution(
        executionArn=arn, error="Operator", cause="stopped while the host hung"
    )
    return arn


def labelled(pipeline: LocalPipeline, stack: DeployedStack, url: str) -> int:
    """DetectLabels calls for the image of ``url`` (its S3 object)."""
    assert pipeline.cloud.rekognition is not None
    source = f"s3://{stack.resource('ImagesBucket')}/images/{url_digest(url)}.jpg"
    return pipeline.cloud.rekognition.calls_by_source().get(source, 0)


def letters_for(stack: DeployedStack, url: str) -> list[dict[str, Any]]:
    bodies = [json.loads(letter.body) for letter in dead_letters_of(stack, WORKFLOW_DLQ)]
    return [body for body in bodies if (body.get("message") or {}).get("url") == url]


def statuses(stack: DeployedStack, url: str) -> list[tuple[str, str]]:
    return [(execution.name, execution.status) for execution in executions_of(stack, url)]


@pytest.fixture
def events_lost(pipeline: LocalPipeline) -> Iterator[None]:
    """Status-change events are dropped while the test runs (best effort: they can be lost)."""
    pipeline.cloud.status_events.enabled = False
    try:
        yield
    finally:
        pipeline.cloud.status_events.enabled = True


def test_aborted_execution_is_dead_lettered_then_classified_once(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN an execution held in Fetch Image, stopped by an operator
    url = hold_url(pipeline, "abort")
    recording = recordings.build([PostSpec("Stuck", ("cat",), (url,))])
    publish(pipeline, recording)
    wait_for_fetch(pipeline, url)
    arn = stop(stack, url)
    settle(pipeline)

    # THEN one dead letter says ABORTED with the operator's reason, and the claim is FAILED
    [letter] = letters_for(stack, url)
    assert letter == {
        "message": route_message(recording, url, "cats"),
        "input": None,
        "error": {"Error": "Operator", "Cause": "stopped while the host hung"},
        "execution": arn,
        "status": "ABORTED",
        "failed_state": "Fetch Image",
        "detected_by": "status-change-event",
    }
    assert result_item(stack, url)["status"] == "FAILED"

    # WHEN the dead letter is sent back
    assert redrive(stack, queue=WORKFLOW_DLQ) == {WORKFLOW_DLQ: 1}
    settle(pipeline)

    # THEN the next attempt classifies the image, labelled once in all, and no letter is left
    assert statuses(stack, url) == [
        (execution_name(url, 1), "ABORTED"),
        (execution_name(url, 2), "DONE"),
    ]
    assert result_item(stack, url)["status"] == "DONE"
    assert labelled(pipeline, stack, url) == 1
    assert letters_for(stack, url) == []


def aborted_in_a_stale_lease(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings, key: str
) -> tuple[str, Recording]:
    """An aborted execution whose status event was lost: its claim is still IN_PROGRESS and
    its lease has minutes to run. The URL and the recording that posted it."""
    url = hold_url(pipeline, key)
    recording = recordings.build([PostSpec("Stale", ("cat",), (url,))])
    publish(pipeline, recording)
    wait_for_fetch(pipeline, url)
    stop(stack, url)
    settle(pipeline)
    assert result_item(stack, url)["status"] == "IN_PROGRESS"
    return url, recording


def test_replay_inside_a_stale_lease_starts_the_next_attempt(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings, events_lost: None
) -> None:
    # GIVEN an aborted execution whose claim the closer never closed (its event was lost)
    url, recording = aborted_in_a_stale_lease(pipeline, stack, recordings, "stale")

    # WHEN its message comes back as a redrive does (attempt + 1)
    body = json.dumps(route_message(recording, url, "cats", attempt=1))
    stack.client("sqs").send_message(QueueUrl=stack.resource("CatsQueue"), MessageBody=body)
    settle(pipeline)

    # THEN it is not swallowed by the stale lease: the next attempt takes the claim over and
    # classifies the image once
    assert statuses(stack, url) == [
        (execution_name(url, 1), "ABORTED"),
        (execution_name(url, 2), "DONE"),
    ]
    assert labelled(pipeline, stack, url) == 1


def test_same_message_inside_a_stale_lease_is_a_duplicate_of_the_aborted_attempt(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings, events_lost: None
) -> None:
    # GIVEN an aborted execution whose claim the closer never closed (its event was lost)
    url, recording = aborted_in_a_stale_lease(pipeline, stack, recordings, "stale-copy")

    # WHEN the same message arrives again (SQS delivering it twice, or another post)
    body = json.dumps(route_message(recording, url, "cats"))
    stack.client("sqs").send_message(QueueUrl=stack.resource("CatsQueue"), MessageBody=body)
    settle(pipeline)

    # THEN it starts nothing, as once the claim is closed: an abort ends the attempt for good,
    # and its letter (the sweep's, once the lease ends) is what a redrive sends back
    assert statuses(stack, url) == [(execution_name(url, 1), "ABORTED")]
    assert record_outcomes(pipeline, url) == {"ExecutionStarted": 1, "Duplicate": 1}
    assert labelled(pipeline, stack, url) == 0


def test_sweep_dead_letters_an_expired_claim_whose_event_was_lost(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings, events_lost: None
) -> None:
    # GIVEN an aborted execution whose status event was lost
    url = hold_url(pipeline, "swept")
    recording = recordings.build([PostSpec("Swept", ("cat",), (url,))])
    publish(pipeline, recording)
    wait_for_fetch(pipeline, url)
    arn = stop(stack, url)
    settle(pipeline)
    assert letters_for(stack, url) == []
    # AND its lease has run out (set in the item: the 330 s lease is not waited for)
    stack.client("dynamodb").update_item(
        TableName=stack.resource("ResultsTable"),
        Key={"pk": {"S": url}, "sk": {"S": "RESULT"}},
        UpdateExpression="SET lease_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1000000000"}},
    )

    # WHEN the sweep's schedule fires
    pipeline.cloud.fire_rule(SWEEP_RULE)
    settle(pipeline)

    # THEN the sweep found it through the OpenClaims index and closed it the same way
    [letter] = letters_for(stack, url)
    assert (letter["execution"], letter["status"], letter["detected_by"]) == (
        arn,
        "ABORTED",
        "lease-sweep",
    )
    item = result_item(stack, url)
    assert (item["status"], "open_claim" in item) == ("FAILED", False)
    assert item["lease_expires_at"] == Decimal(1_000_000_000)


def test_refused_dead_letter_is_sent_once_on_the_closer_s_retry(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN SQS refuses the first dead letter sent to the workflow DLQ
    dlq_name = stack.resource(WORKFLOW_DLQ).rsplit("/", 1)[-1]
    original = SQSResponse.send_message
    refused: list[str] = []

    def send_message(response: SQSResponse) -> Any:
        if response._get_queue_name() == dlq_name and not refused:
            refused.append(dlq_name)
            raise JsonRESTError("InternalError", "SQS is having a bad moment")
        return original(response)

    patches = PatchSet()
    patches.replace(SQSResponse, "send_message", send_message)
    try:
        # WHEN an execution is aborted and the closer handles its event
        url = hold_url(pipeline, "refused")
        recording = recordings.build([PostSpec("Refused", ("cat",), (url,))])
        publish(pipeline, recording)
        wait_for_fetch(pipeline, url)
        arn = stop(stack, url)
        settle(pipeline)
    finally:
        patches.restore()

    # THEN the first attempt failed, Lambda's retry sent the letter, and only one exists
    assert refused == [dlq_name]
    closer = stack.resource("ExecutionCloserFunction")
    [handled] = [
        record
        for record in pipeline.cloud.async_invocations()
        if record.function_name.endswith(":function:" + closer) and record.attempts > 1
    ]
    assert (handled.attempts, handled.succeeded) == (2, True)
    assert [letter["execution"] for letter in letters_for(stack, url)] == [arn]

    # AND sent back, the message is classified once
    redrive(stack, queue=WORKFLOW_DLQ)
    settle(pipeline)
    assert result_item(stack, url)["status"] == "DONE"
    assert labelled(pipeline, stack, url) == 1


def test_two_messages_racing_for_one_url_classify_it_once(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN two posts, one per route, showing one photo whose host answers slowly the first
    # time: the second message arrives while the first's execution is fetching
    url = hold_url(pipeline, "race")
    recording = recordings.build(
        [PostSpec("Cat side", ("cat",), (url,)), PostSpec("Dog side", ("dog",), (url,))]
    )

    # WHEN both are published in one producer run
    publish(pipeline, recording)
    settle(pipeline)

    # THEN one execution classified it; the other message joined it or found it DONE
    assert statuses(stack, url) == [(execution_name(url, 1), "DONE")]
    outcomes = record_outcomes(pipeline, url)
    assert outcomes["ExecutionStarted"] == 1
    assert outcomes["InFlight"] + outcomes["Duplicate"] == 1
    assert labelled(pipeline, stack, url) == 1
    assert letters_for(stack, url) == []
