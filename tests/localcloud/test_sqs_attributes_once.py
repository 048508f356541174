"""``install_attributes_once``: GetQueueAttributes computes a queue's attributes once per call
and answers exactly as moto does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue, SQSBackend

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.sqs import install_attributes_once

COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def _queue_with_messages(sqs: Any) -> str:
    """A queue holding 2 visible, 1 in-flight and 1 delayed message, with a redrive policy."""
    dlq = sqs.create_queue(QueueName="letters")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 5}}',
        },
    )["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    return url


def _answers(sqs: Any, url: str) -> list[dict[str, str]]:
    return [
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        for names in (COUNTS, ["All"], ["QueueArn", "RedrivePolicy"], ["VisibilityTimeout"])
    ]


@pytest.fixture
def computations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every queue whose attributes moto computes, in order."""
    computed: list[str] = []
    compute = Queue.__dict__["attributes"].fget

    def counted(queue: Any) -> Any:
        computed.append(queue.name)
        return compute(queue)

    monkeypatch.setattr(Queue, "attributes", property(counted))
    return computed


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_the_answers_are_moto_s_own(sqs: Any) -> None:
    # GIVEN a queue with visible, in-flight and delayed messages, and moto's answers
    url = _queue_with_messages(sqs)
    expected = _answers(sqs, url)
    patches = PatchSet()
    install_attributes_once(patches)
    try:
        # WHEN the same attributes are asked with the fix
        answers = _answers(sqs, url)
    finally:
        patches.restore()
    # THEN every answer is moto's, counts included
    assert answers == expected
    assert {name: answers[0][name] for name in COUNTS} == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "1",
    }


def test_three_counts_compute_the_attributes_once(sqs: Any, computations: list[str]) -> None:
    # GIVEN a queue with messages and the fix installed
    url = _queue_with_messages(sqs)
    patches = PatchSet()
    install_attributes_once(patches)
    try:
        computations.clear()
        # WHEN the idle check's three counts are asked
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=COUNTS)
    finally:
        patches.restore()
    # THEN the queue's attributes were computed once (moto alone: three times per name)
    assert computations == ["work"]


def test_restoring_gives_moto_its_property_and_method_back() -> None:
    # GIVEN the fix installed
    attributes, get = Queue.__dict__["attributes"], SQSBackend.get_queue_attributes
    patches = PatchSet()
    install_attributes_once(patches)
    assert Queue.__dict__["attributes"] is not attributes
    # WHEN restored / THEN both are moto's again
    patches.restore()
    assert Queue.__dict__["attributes"] is attributes
    assert SQSBackend.get_queue_attributes is get
