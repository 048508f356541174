"""A Detect Labels task's TimeoutSeconds leaves out the wait for the local labeler (it labels
one image at a time, where Rekognition would not queue the calls), and counts the labelling."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from tests.localcloud.conftest import TEMPLATES
from tweetlens.localcloud import LocalCloud, OpenCvLabeler
from tweetlens.localcloud.taskclock import TaskClock, serving

if TYPE_CHECKING:
    from cv2.typing import MatLike

TEMPLATE = TEMPLATES / "queued_labeler.yaml"
BUCKET = "queued-labeler-test"
KEY = "gray.png"


class SlowLabeler(OpenCvLabeler):
    """The real labeler, its labelling (under its lock) made ``seconds`` longer."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.labelling = threading.Event()

    def _detect(self, gray: MatLike) -> list[Any]:
        self.labelling.set()
        time.sleep(self.seconds)
        return super()._detect(gray)


def _png() -> bytes:
    encoded, image = cv2.imencode(".png", np.full((100, 100), 128, dtype=np.uint8))
    assert encoded
    return bytes(image.tobytes())


@pytest.fixture(scope="module")
def labeler() -> SlowLabeler:
    return SlowLabeler()


@pytest.fixture(scope="module")
def cloud(labeler: SlowLabeler) -> Iterator[LocalCloud]:
    with LocalCloud(
        TEMPLATE, labeler=labeler, run_schedules=False, run_pollers=False
    ) as local_cloud:
        s3 = local_cloud.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=_png())
        yield local_cloud


def _run_together(cloud: LocalCloud, count: int) -> list[dict[str, str]]:
    sfn = cloud.client("stepfunctions")
    arns = [
        sfn.start_execution(
            stateMachineArn=cloud.resources["LabelStateMachine"],
            name=f"label-{time.monotonic_ns()}-{n}",
            input=json.dumps({"bucket": BUCKET, "key": KEY}),
        )["executionArn"]
        for n in range(count)
    ]
    assert cloud.wait_until_idle(timeout=60).idle
    described = [sfn.describe_execution(executionArn=arn) for arn in arns]
    return [
        {"status": execution["status"], "error": execution.get("error", "")}
        for execution in described
    ]


@pytest.mark.integration
def test_executions_queued_for_the_labeler_do_not_time_out(
    cloud: LocalCloud, labeler: SlowLabeler
) -> None:
    # GIVEN five executions started together, each labelling for 1 s under a 3 s task
    # timeout: the labeler takes one at a time, so the last waits about 4 s to start
    labeler.seconds = 1.0

    # WHEN they run
    outcomes = _run_together(cloud, 5)

    # THEN all five succeed, as in AWS where Rekognition would not have queued them
    assert outcomes == [{"status": "SUCCEEDED", "error": ""}] * 5


@pytest.mark.integration
def test_a_labelling_past_the_task_timeout_still_times_out(
    cloud: LocalCloud, labeler: SlowLabeler
) -> None:
    # GIVEN one execution whose labelling (4 s) outlasts its task's 3 s timeout, nothing queued
    labeler.seconds = 4.0

    # WHEN it runs
    outcomes = _run_together(cloud, 1)

    # THEN the task timed out, failing the execution
    assert outcomes == [{"status": "FAILED", "error": "States.Timeout"}]


def test_a_call_waiting_for_the_labeler_pauses_only_its_own_task_clock() -> None:
    # GIVEN the labeler labelling one call for 0.5 s, and a second call served for a task
    labeler = SlowLabeler()
    labeler.seconds = 0.5
    image = _png()
    first = threading.Thread(
        target=labeler.detect_labels,
        args=(image,),
        kwargs={"max_labels": 10, "min_confidence": 55.0},
    )
    first.start()
    assert labeler.labelling.wait(10)
    clock = TaskClock()

    # WHEN the second call waits for the first, then labels for 0.5 s itself
    with serving(clock.token):
        labeler.detect_labels(image, max_labels=10, min_confidence=55.0)
    first.join()

    # THEN the clock was paused for the wait (under 0.5 s), not for its own labelling too
    assert 0.3 <= clock.paused_seconds() < 0.8


def test_a_call_not_from_a_task_pauses_no_clock() -> None:
    # GIVEN a task's clock, and the labeler labelling one call for 0.5 s
    clock = TaskClock()
    labeler = SlowLabeler()
    labeler.seconds = 0.5
    image = _png()
    first = threading.Thread(
        target=labeler.detect_labels,
        args=(image,),
        kwargs={"max_labels": 10, "min_confidence": 55.0},
    )
    first.start()
    assert labeler.labelling.wait(10)

    # WHEN a second call, served for no task, waits for the first
    labeler.detect_labels(image, max_labels=10, min_confidence=55.0)
    first.join()

    # THEN no clock was paused
    assert clock.paused_seconds() == 0.0
