"""EXPRESS on the local cloud: a record that failed transiently comes back after a backoff.

The template's route queues keep a received message invisible for 2160 s under EXPRESS, and
this pipeline runs visibility timeouts on the real clock (``visibility_timeout_scale`` 1). A
record the classifier left for redelivery without shortening its visibility would keep the
pipeline busy for 36 minutes; backed off, it is delivered again within 10 s (the first receive's
ceiling, ``classifier.backoff``) through the local cloud's event source mapping and SQS.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from common.messages import url_digest
from tests.integration.pipeline_kit import (
    PostSpec,
    Recordings,
    classifier_log_entries,
    publish,
    record_outcomes,
    result_item,
    settle,
)
from tweetlens.localcloud.labelers import LabelerError
from tweetlens.localcloud.rekognition import LabelRequest
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration

DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "classify_image.asl.json"
# The first receive's backoff ceiling (classifier.backoff.BASE_SECONDS).
FIRST_CEILING_SECONDS = 10
# Far below the queue's 2160 s: only a backed-off record settles within it.
SETTLE_SECONDS = 60.0


def detect_labels_attempts() -> int:
    """How often one execution calls DetectLabels before it gives up on throttling."""
    definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
    [retrier] = definition["States"]["Detect Labels"]["Retry"]
    assert "Rekognition.ThrottlingException" in retrier["ErrorEquals"]
    return 1 + int(retrier["MaxAttempts"])


class ThrottleFirstCalls:
    """A Rekognition fault injector: the first ``calls`` DetectLabels calls for one image are
    throttled, as a quota would, then it is labelled."""

    def __init__(self, url: str, calls: int) -> None:
        self._key = f"/images/{url_digest(url)}.jpg"
        self._calls = calls
        self._lock = threading.Lock()
        self.throttled = 0

    def __call__(self, request: LabelRequest) -> None:
        if not request.source.endswith(self._key):
            return
        with self._lock:
            if self.throttled >= self._calls:
                return
            self.throttled += 1
        raise LabelerError("ThrottlingException", "Rate exceeded")


def lines(pipeline: LocalPipeline, message: str) -> list[dict[str, Any]]:
    return [entry for entry in classifier_log_entries(pipeline) if entry.get("message") == message]


def test_throttled_image_comes_back_after_a_backoff_and_is_classified(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN an image whose first execution is throttled on every DetectLabels attempt
    url = pipeline.images.media_url("chelsea")
    attempts = detect_labels_attempts()
    throttle = ThrottleFirstCalls(url, attempts)
    rekognition = pipeline.cloud.rekognition
    assert rekognition is not None
    rekognition.fault_injector = throttle
    try:
        # WHEN its post is published and the pipeline settles
        started = time.monotonic()
        publish(pipeline, recordings.build([PostSpec("Window patrol", ("cat",), (url,))]))
        settle(pipeline, timeout=SETTLE_SECONDS)
        took = time.monotonic() - started
    finally:
        rekognition.fault_injector = None

    # THEN the first execution failed transiently and its record was backed off after its
    # first receive, by at most that receive's ceiling
    assert throttle.throttled == attempts
    failed = lines(pipeline, "Execution failed transiently; record will be retried")
    assert [entry["error"] for entry in failed] == ["Rekognition.ThrottlingException"]
    [backed_off] = lines(pipeline, "Record will be delivered again soon")
    assert backed_off["receives"] == 1
    assert 0 <= backed_off["delay_seconds"] <= FIRST_CEILING_SECONDS
    # AND SQS delivered it again long before the queue's 2160 s, and it was classified once
    assert took < SETTLE_SECONDS
    assert record_outcomes(pipeline, url) == Counter({"Classified": 1})
    result = result_item(stack, url)
    assert result["status"] == "DONE"
    assert result["labels"]
    source = f"s3://{stack.resource('ImagesBucket')}/images/{url_digest(url)}.jpg"
    assert rekognition.calls_by_source()[source] == attempts + 1
