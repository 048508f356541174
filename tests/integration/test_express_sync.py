"""The real template deployed with WorkflowType=EXPRESS: the classifier runs each image
synchronously and settles it; duplicates cost no DetectLabels call; a failure, one letter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from common.messages import EXPRESS_NAME_HASH_CHARS, url_digest
from tests.integration.pipeline_kit import (
    CLASSIFIER,
    PostSpec,
    Recordings,
    dead_letters_of,
    publish,
    record_outcomes,
    result_item,
    route_message,
    settle,
)
from tweetlens import trace
from tweetlens.demo import deployed
from tweetlens.dlq import WORKFLOW_DLQ
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration

STATE_MACHINE = "ClassifyImageStateMachine"
LOG_GROUP = "ClassifyImageLogGroup"
DUPLICATE_POSTS = 6


@pytest.fixture(scope="module")
def pipeline() -> Iterator[LocalPipeline]:
    """This module's own pipeline: the template deployed EXPRESS, logging ALL."""
    with LocalPipeline(
        parameter_overrides={"WorkflowType": "EXPRESS", "ExpressLogLevel": "ALL"}
    ) as started:
        yield started


@pytest.fixture(scope="module")
def stack(pipeline: LocalPipeline) -> DeployedStack:
    return deployed(pipeline)


def detect_labels_calls(pipeline: LocalPipeline) -> int:
    hook = pipeline.cloud.rekognition
    assert hook is not None
    return sum(hook.calls_by_source().values())


def express_log_records(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    logs = pipeline.cloud.client("logs")
    group = pipeline.cloud.resources[LOG_GROUP]
    records: list[dict[str, Any]] = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        records.extend(json.loads(event["message"]) for event in events["events"])
    return records


def send_to_cats_queue(stack: DeployedStack, message: dict[str, Any]) -> None:
    stack.client("sqs").send_message(
        QueueUrl=stack.resource("CatsQueue"), MessageBody=json.dumps(message)
    )


def test_classifier_runs_express_synchronously(pipeline: LocalPipeline) -> None:
    # GIVEN / WHEN the template is deployed with WorkflowType=EXPRESS
    machine = next(iter(pipeline.cloud.state_machines.values()))
    variables = pipeline.cloud.functions[CLASSIFIER].environment

    # THEN the machine is EXPRESS, logs ALL with data, and the classifier knows it
    assert machine.type == "EXPRESS"
    assert machine.logging is not None
    assert (machine.logging.level, machine.logging.include_execution_data) == ("ALL", True)
    assert variables["WORKFLOW_TYPE"] == "EXPRESS"


def test_images_are_done_and_duplicates_cost_nothing(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN two posts with a cat photo each
    urls = [pipeline.images.media_url(name) for name in pipeline.images.photo_names[:2]]
    recording = recordings.build(
        [PostSpec(f"Cat {i}", ("cat",), (url,)) for i, url in enumerate(urls)]
    )
    calls_before = detect_labels_calls(pipeline)

    # WHEN the producer publishes them and the pipeline settles
    publish(pipeline, recording)
    settle(pipeline)

    # THEN each image is DONE after one synchronous execution and one DetectLabels call
    assert [result_item(stack, url)["status"] for url in urls] == ["DONE", "DONE"]
    assert [record_outcomes(pipeline, url) for url in urls] == [{"Classified": 1}] * 2
    assert detect_labels_calls(pipeline) == calls_before + 2
    # AND Step Functions lists no execution: Express executions are not listed
    listed = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.resource(STATE_MACHINE)
    )
    assert listed["executions"] == []
    # AND the log group holds each execution from ExecutionStarted to ExecutionSucceeded
    done = {
        record["execution_arn"]
        for record in express_log_records(pipeline)
        if record["type"] == "ExecutionSucceeded"
    }
    executions = {result_item(stack, url)["execution"] for url in urls}
    assert executions <= done
    assert all(":express:" in arn for arn in executions)
    # AND `tweetlens trace` draws an Express execution from those logs
    drawn = trace.trace_execution(stack, result_item(stack, urls[0])["execution"])
    assert drawn.status == "SUCCEEDED"
    assert [visit.name for visit in drawn.trace.visits] == [
        "Claim Image",
        "Fetch Image",
        "Detect Labels",
        "Store Result",
    ]
    assert json.loads(drawn.input)["message"] == route_message(recording, urls[0], "cats")

    # WHEN SQS delivers the first message twice more (duplicates of a DONE image)
    message = route_message(recording, urls[0], "cats")
    send_to_cats_queue(stack, message)
    send_to_cats_queue(stack, message)
    settle(pipeline)

    # THEN neither runs an execution nor calls DetectLabels
    assert record_outcomes(pipeline, urls[0]) == {"Classified": 1, "Duplicate": 2}
    assert detect_labels_calls(pipeline) == calls_before + 2


def test_permanent_failure_is_one_letter(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN a post whose photo is gone (404)
    url = pipeline.images.fault_url("404")
    recording = recordings.build([PostSpec("Gone", ("cat",), (url,))])
    letters_before = len(dead_letters_of(stack, WORKFLOW_DLQ))

    # WHEN it is published and the pipeline settles
    publish(pipeline, recording)
    settle(pipeline)

    # THEN the classifier dead-lettered the execution once, in the closer's shape
    letters = dead_letters_of(stack, WORKFLOW_DLQ)[letters_before:]
    assert len(letters) == 1
    body = json.loads(letters[0].body)
    result = result_item(stack, url)
    assert {key: body[key] for key in ("message", "status", "detected_by", "failed_state")} == {
        "message": route_message(recording, url, "cats"),
        "status": "FAILED",
        "detected_by": "sync-result",
        "failed_state": None,
    }
    assert body["error"]["Error"] == "ImageNotFound"
    assert body["execution"] == result["execution"]
    # AND the claim is closed, and the record was deleted from its queue
    assert result["status"] == "FAILED"
    assert "open_claim" not in result
    assert record_outcomes(pipeline, url) == {"ExecutionDeadLettered": 1}
    # AND its trace shows where it failed
    drawn = trace.trace_execution(stack, body["execution"])
    assert (drawn.status, drawn.trace.failed_state) == ("FAILED", "Fetch Image")


def test_concurrent_duplicates_run_no_execution(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN six posts of one new photo published at once, half to each route: the two route
    # queues have mappings of their own, so copies reach concurrent classifier invocations
    # (and, within one queue, the same batch)
    url = pipeline.images.media_url(pipeline.images.photo_names[2])
    recording = recordings.build(
        [
            PostSpec(f"Same photo {i}", ("cat",) if i % 2 else ("dog",), (url,))
            for i in range(DUPLICATE_POSTS)
        ]
    )
    calls_before = detect_labels_calls(pipeline)

    # WHEN the producer publishes them and the pipeline settles
    publish(pipeline, recording)
    settle(pipeline)

    # THEN one execution ran for the photo, and one DetectLabels call: every other post was
    # settled as a duplicate by the batch or by the reservation, none by an execution
    started = [
        record["execution_arn"]
        for record in express_log_records(pipeline)
        if record["type"] == "ExecutionStarted"
        and f":{url_digest(url)[:EXPRESS_NAME_HASH_CHARS]}-" in record["execution_arn"]
    ]
    assert len(started) == 1
    assert detect_labels_calls(pipeline) == calls_before + 1
    outcomes = record_outcomes(pipeline, url)
    assert outcomes.pop("Classified") == 1
    assert sum(outcomes.values()) == DUPLICATE_POSTS - 1
    assert set(outcomes) <= {"Duplicate", "InFlight"}
    assert result_item(stack, url)["status"] == "DONE"
