"""The chaos report's count of superseded workflow letters: `tweetlens dlq`'s rule, applied to
what the run left (its letters and result items). Pure: no cloud."""

from __future__ import annotations

import json

from tweetlens.chaos.invariants import superseded_letters
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter
from tweetlens.results import ImageResult

DONE_URL = "https://localhost:8443/media/chelsea.jpg"
FAILED_URL = "https://localhost:8443/faults/404"


def _letter(queue: str, url: str, error: str) -> DeadLetter:
    message = {"url": url, "post_id": "1", "media_key": "3_1", "route": "cats", "attempt": 0}
    body = {"message": message, "execution": f"arn:{error}"} if queue == WORKFLOW_DLQ else message
    return DeadLetter(
        queue=queue,
        message_id=f"{queue}-{error}",
        receipt_handle="r",
        body=json.dumps(body),
        error=error,
        reason="",
        route="cats",
        receive_count=1,
    )


def _result(url: str, status: str) -> ImageResult:
    return ImageResult(
        url=url,
        status=status,
        route="cats",
        post_id="1",
        text="",
        hashtags=[],
        labels=[],
        image_key="",
        error="",
        cause="",
        execution=f"arn:{status}",
    )


def test_only_workflow_letters_of_images_classified_since_are_superseded() -> None:
    # GIVEN a throttled-out image a later post classified, an image still gone, and a route
    # letter of the classified image (no workflow letter: the rule is not its)
    letters = [
        _letter(WORKFLOW_DLQ, DONE_URL, "Rekognition.ThrottlingException"),
        _letter(WORKFLOW_DLQ, FAILED_URL, "ImageNotFound"),
        _letter("CatsDeadLetterQueue", DONE_URL, "MaxReceiveCountExceeded"),
    ]
    results = [_result(DONE_URL, "DONE"), _result(FAILED_URL, "FAILED")]
    # WHEN the run's superseded letters are counted
    # THEN only the throttled-out image's workflow letter counts
    assert superseded_letters(letters, results) == 1
    # AND with the image not classified, none does
    assert superseded_letters(letters, [_result(DONE_URL, "FAILED")]) == 0
