"""Partial batch failures through the local cloud's SQS poller and the route queue's redrive."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from typing import Any

import pytest
from moto.core.exceptions import AWSError
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from tests.integration.pipeline_kit import (
    BATCHING_WINDOW_SCALE,
    STANDARD,
    classifier_log_entries,
    dead_letters_of,
    execution_name,
    executions_of,
    settle,
)
from tweetlens.accounting import classifier_records
from tweetlens.chaos.config import BATCHING_WINDOW_SECONDS
from tweetlens.localcloud.pollers import POLL_WAIT_SECONDS
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workflow_parameters() -> dict[str, str]:
    """STANDARD: StartExecution refused for one execution name, its record retried by SQS."""
    return STANDARD


# The template's CatsQueue: maxReceiveCount of its redrive policy.
MAX_RECEIVE_COUNT = 5
# The template's 360 s visibility timeout would make five receives last thirty minutes. This
# still outlasts one poll: the route mappings' batching window (the template's, pinned by
# tests/chaos/test_chaos_visibility.py, run at BATCHING_WINDOW_SCALE) plus a warm
# classifier invocation, with the 3 s of headroom 8 s left beside the whole window, so a record
# is never received twice within one batch. SQS takes whole seconds: 4 s.
VISIBILITY_SECONDS = str(math.ceil(BATCHING_WINDOW_SECONDS["STANDARD"] * BATCHING_WINDOW_SCALE + 3))


class ExecutionLimitExceeded(AWSError):
    """Step Functions' answer when too many executions are open: a transient error."""

    TYPE = "ExecutionLimitExceeded"
    STATUS = 400


class StartExecutionFault:
    """Refuses StartExecution for one execution name, counting the attempts."""

    def __init__(self, refused_name: str) -> None:
        self.refused_name = refused_name
        self.attempts = 0
        self._lock = threading.Lock()
        self._original = StepFunctionsParserBackend.start_execution

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fault = self

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: Any = None,
            execution_input: Any = None,
            trace_header: Any = None,
        ) -> Any:
            if name == fault.refused_name:
                with fault._lock:
                    fault.attempts += 1
                raise ExecutionLimitExceeded("Maximum number of running executions reached.")
            return fault._original(backend, state_machine_arn, name, execution_input, trace_header)

        # The emulator serves Step Functions from this process, so the fault is in its path.
        monkeypatch.setattr(StepFunctionsParserBackend, "start_execution", start_execution)


def photo_body(url: str, post_id: str) -> str:
    return json.dumps(
        {
            "url": url,
            "post_id": post_id,
            "media_key": f"3_{post_id}",
            "text": "Caught mid-stretch #cat",
            "hashtags": ["cat"],
            "route": "cats",
            "attempt": 0,
        },
        separators=(",", ":"),
    )


def test_only_the_failed_record_comes_back_until_it_is_dead_lettered(
    pipeline: LocalPipeline, stack: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a warm classifier and a cats queue with a short visibility timeout
    sqs = stack.client("sqs")
    queue = stack.resource("CatsQueue")
    base = pipeline.images.media_url("chelsea")
    sqs.send_message(QueueUrl=queue, MessageBody=photo_body(f"{base}?warm=1", "1"))
    settle(pipeline)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": VISIBILITY_SECONDS})
    # The emulator reads the timeout when a receive starts: let the long polls already waiting
    # end, or one of them could hand the new messages out with the old 360 s.
    time.sleep(2 * POLL_WAIT_SECONDS)
    # AND Step Functions refusing to start the execution of one of three photos
    urls = [f"{base}?n={n}" for n in (1, 2, 3)]
    bodies = [photo_body(url, str(100 + n)) for n, url in enumerate(urls)]
    fault = StartExecutionFault(execution_name(urls[1]))
    fault.install(monkeypatch)

    # WHEN the three messages arrive together and the pipeline settles
    sent = sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)],
    )
    ids = [entry["MessageId"] for entry in sorted(sent["Successful"], key=lambda e: e["Id"])]
    settle(pipeline, timeout=120)

    # THEN the two good records were processed once each and never came back
    entries = classifier_log_entries(pipeline)
    lines = Counter(
        (entry["message_id"], entry["message"]) for entry in entries if "message_id" in entry
    )
    processed = [
        (record.message_id, record.outcome)
        for record in classifier_records([json.dumps(entry) for entry in entries])
        if record.message_id in ids
    ]
    assert processed == [(ids[0], "ExecutionStarted"), (ids[2], "ExecutionStarted")]
    for url in (urls[0], urls[2]):
        assert [(e.name, e.status) for e in executions_of(stack, url)] == [
            (execution_name(url), "DONE")
        ]
    # AND the refused record was received maxReceiveCount times, failing each time
    assert fault.attempts == MAX_RECEIVE_COUNT
    assert lines[(ids[1], "StartExecution failed; record will be retried")] == MAX_RECEIVE_COUNT
    assert executions_of(stack, urls[1]) == []
    # AND the redrive policy then moved it, unchanged and without attributes, to the route DLQ
    letters = dead_letters_of(stack, "CatsDeadLetterQueue")
    assert [(letter.body, letter.error, letter.route) for letter in letters] == [
        (bodies[1], "MaxReceiveCountExceeded", "cats")
    ]
