"""``visibility_timeout_scale``: SQS visibility timeouts on a faster clock, API unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.sqs import install_visibility_timeout_scale

SCALE = 0.05


@pytest.fixture
def scaled_sqs() -> Iterator[tuple[Any, str]]:
    """A queue with a 20 s visibility timeout on a clock twenty times faster (1 s)."""
    patches = PatchSet()
    with mock_aws():
        install_visibility_timeout_scale(patches, SCALE)
        try:
            sqs = boto3.client("sqs", region_name="us-east-1")
            url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "20"})
            yield sqs, url["QueueUrl"]
        finally:
            patches.restore()


def _receive(sqs: Any, url: str, **options: Any) -> list[str]:
    return [
        message["Body"]
        for message in sqs.receive_message(QueueUrl=url, **options).get("Messages", [])
    ]


def test_queue_visibility_timeout_runs_scaled_and_reads_as_declared(
    scaled_sqs: tuple[Any, str],
) -> None:
    # GIVEN a message received once from the queue (20 s declared, 1 s scaled)
    sqs, url = scaled_sqs
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert _receive(sqs, url) == ["m"]

    # WHEN it is received again at once, then after the scaled timeout
    hidden = _receive(sqs, url)
    time.sleep(20 * SCALE + 0.3)
    back = _receive(sqs, url)

    # THEN it was hidden, then visible again well before the declared 20 s
    assert hidden == []
    assert back == ["m"]
    # AND the queue still reports the timeout the template declared
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "20"


def test_change_message_visibility_runs_scaled(scaled_sqs: tuple[Any, str]) -> None:
    # GIVEN a received message whose visibility is changed to 40 s (2 s scaled)
    sqs, url = scaled_sqs
    sqs.send_message(QueueUrl=url, MessageBody="m")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=40)

    # WHEN it is received after 1.3 s, then after 2.3 s
    time.sleep(1.3)
    early = _receive(sqs, url)
    time.sleep(1.0)
    late = _receive(sqs, url)

    # THEN the changed timeout held past the queue's own scaled 1 s, and ended at 2 s
    assert early == []
    assert late == ["m"]


def test_visibility_zero_makes_the_message_visible_at_once(scaled_sqs: tuple[Any, str]) -> None:
    # GIVEN a received message
    sqs, url = scaled_sqs
    sqs.send_message(QueueUrl=url, MessageBody="m")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]

    # WHEN its visibility is changed to 0
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)

    # THEN the next receive gets it
    assert _receive(sqs, url) == ["m"]


def test_restore_puts_the_real_clock_back() -> None:
    # GIVEN the scale installed, then the patches restored
    patches = PatchSet()
    with mock_aws():
        install_visibility_timeout_scale(patches, SCALE)
        patches.restore()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="m")
        assert _receive(sqs, url) == ["m"]

        # WHEN it is received again after more than the scaled (0.05 s) but less than 1 s
        time.sleep(0.3)

        # THEN it is still hidden: the real 1 s applies
        assert _receive(sqs, url) == []


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_scale_must_be_positive(scale: float) -> None:
    # GIVEN a scale that is not positive
    # WHEN it is installed
    # THEN it is refused
    with pytest.raises(ValueError, match="visibility_timeout_scale must be positive"):
        install_visibility_timeout_scale(PatchSet(), scale)


def test_local_cloud_refuses_a_scale_that_is_not_positive() -> None:
    # GIVEN the sample application's template
    # WHEN a local cloud is made with a visibility timeout scale of 0
    # THEN it is refused before anything starts
    with pytest.raises(ValueError, match="visibility_timeout_scale must be positive"):
        LocalCloud(SAMPLE_TEMPLATE, visibility_timeout_scale=0)
