"""One deployed pipeline for every module of this folder (pytest's package scope).

Starting the template takes a few seconds, and the first test of each pipeline pays every
function's cold start: the modules here do not need a pipeline of their own, so they share one.
What keeps them independent:

* every test uses its own image URLs, and reads executions, results, letters, Rekognition
  calls and log records by URL;
* post ids grow across the whole folder (one ``Recordings``), so the producer's ``since_id``
  checkpoint reads each module's posts and nothing of the modules before;
* each module starts with empty dead-letter queues and an idle pipeline, as it would on a
  pipeline of its own;
* a test that patches the emulator or mutates the stack's configuration restores it in a
  ``finally`` (or belongs outside this folder, on its own pipeline: ``test_partial_batch``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pipeline_kit import BATCHING_WINDOW_SCALE, STANDARD, Recordings, settle
from tweetlens.demo import deployed
from tweetlens.dlq import DLQ_SUFFIX
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack


@pytest.fixture(scope="package")
def recordings() -> Recordings:
    return Recordings()


@pytest.fixture(scope="package")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    """This repo's template deployed in the local cloud, shared by every module here.

    STANDARD: these modules test what only Standard executions have (listed, described and
    named executions, aborts, the execution closer, redrive as the next named attempt); the
    schedule's tests hold for either type. With a state file, through which the CLI
    (``tweetlens dlq redrive``) finds it.
    """
    state_file = tmp_path_factory.mktemp("shared-pipeline") / "local-cloud.json"
    with LocalPipeline(
        state_file=state_file,
        parameter_overrides=STANDARD,
        batching_window_scale=BATCHING_WINDOW_SCALE,
    ) as started:
        yield started


@pytest.fixture(scope="package")
def stack(pipeline: LocalPipeline) -> DeployedStack:
    return deployed(pipeline)


def drain_dead_letters(stack: DeployedStack) -> int:
    """Delete every message of the stack's dead-letter queues; how many there were.

    Received and deleted like any consumer would (PurgeQueue is refused twice a minute).
    """
    sqs = stack.client("sqs")
    drained = 0
    for logical_id, queue in stack.resources.items():
        if not logical_id.endswith(DLQ_SUFFIX):
            continue
        while messages := sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", []):
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                    for n, message in enumerate(messages)
                ],
            )
            drained += len(messages)
    return drained


@pytest.fixture(scope="module", autouse=True)
def fresh_module(pipeline: LocalPipeline, stack: DeployedStack) -> None:
    """Each module starts on an idle pipeline with empty dead-letter queues."""
    settle(pipeline)
    drain_dead_letters(stack)
