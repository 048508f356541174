"""How `tweetlens dlq` reads a dead-letter queue: long polls, ended by the first empty one.

A short poll (WaitTimeSeconds=0) asks only a sample of SQS's servers: a queue holding a few
letters may answer empty, and a listing that stopped there would report an empty DLQ that is
not. A long poll asks every server, so its empty answer is the end of the queue.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.unit.classifier.classifier_testkit import REGION, Cloud
from tweetlens.dlq import (
    RECEIVE_WAIT_SECONDS,
    _receive_all,
    list_dead_letters,
    receive_wait_seconds,
)
from tweetlens.stack import DeployedStack

LETTERS = 23


@pytest.fixture(autouse=True)
def dead_letters_read_by_short_polls() -> None:
    """This module tests the long poll AWS needs: it keeps ``RECEIVE_WAIT_SECONDS`` (the
    suite's fixture of this name sets it to 0 everywhere else)."""


def record_receives(cloud: Cloud) -> list[dict[str, Any]]:
    """The parameters of every ReceiveMessage the suite's SQS client sends, in order."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    cloud.sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", record)
    return calls


def fill(cloud: Cloud, count: int) -> None:
    for index in range(count):
        cloud.sqs.send_message(QueueUrl=cloud.cats_dlq_url, MessageBody=f"letter {index}")


def test_every_receive_is_a_long_poll_and_the_first_empty_one_ends_the_queue(cloud: Cloud) -> None:
    # GIVEN a dead-letter queue holding 23 letters
    fill(cloud, LETTERS)
    calls = record_receives(cloud)
    # WHEN it is read to the end
    bodies = sorted(m["Body"] for m in _receive_all(cloud.sqs, cloud.cats_dlq_url, limit=100))
    # THEN every letter is read once, by long polls of 1 s: 10 + 10 + 3, then one empty answer
    assert bodies == sorted(f"letter {index}" for index in range(LETTERS))
    assert RECEIVE_WAIT_SECONDS == 1
    assert [(c["WaitTimeSeconds"], c["MaxNumberOfMessages"]) for c in calls] == [
        (1, 10),
        (1, 10),
        (1, 10),
        (1, 10),
    ]


def test_the_limit_ends_the_reading_without_an_empty_poll(cloud: Cloud) -> None:
    # GIVEN a dead-letter queue holding 23 letters
    fill(cloud, LETTERS)
    calls = record_receives(cloud)
    # WHEN only 20 are asked for
    received = list(_receive_all(cloud.sqs, cloud.cats_dlq_url, limit=20))
    # THEN two receives bring them and no third one waits on the queue
    assert len({m["MessageId"] for m in received}) == 20
    assert [c["MaxNumberOfMessages"] for c in calls] == [10, 10]


def test_the_queues_are_polled_together_not_in_turn(cloud: Cloud) -> None:
    # GIVEN two empty dead-letter queues, whose first receives must each wait for the other's
    # to start (in turn, the first would wait alone until the barrier's timeout breaks it)
    together = threading.Barrier(2, timeout=30)
    first_receives: set[str] = set()

    def meet(params: dict[str, Any], **_: Any) -> None:
        if params["QueueUrl"] not in first_receives:
            first_receives.add(params["QueueUrl"])
            together.wait()

    cloud.sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", meet)
    stack = DeployedStack(
        resources={
            "CatsDeadLetterQueue": cloud.cats_dlq_url,
            "DogsDeadLetterQueue": cloud.dogs_dlq_url,
        },
        region=REGION,
        _clients={"sqs": cloud.sqs},
    )
    # WHEN they are listed
    letters = list_dead_letters(stack)
    # THEN nothing is listed, and both first receives were in flight at once
    assert letters == []
    assert (first_receives, together.broken) == ({cloud.cats_dlq_url, cloud.dogs_dlq_url}, False)


def test_a_stack_behind_an_endpoint_of_its_own_is_read_by_short_polls() -> None:
    # GIVEN a stack in AWS and the same stack reached through the local cloud's endpoint
    in_aws = DeployedStack(resources={}, region=REGION)
    local = DeployedStack(resources={}, region=REGION, endpoint_url="http://127.0.0.1:4566")
    # WHEN each is asked how long a receive of its dead-letter queues waits
    # THEN AWS's is a long poll (only it asks every server); the emulator's one store answers
    # a short poll exactly
    assert (receive_wait_seconds(in_aws), receive_wait_seconds(local)) == (1, 0)
