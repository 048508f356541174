"""``install_atomic_message_list``: a delete beside another delete, or beside a send, loses
neither (moto alone rebuilds the message list without a lock, and the last rebuild wins)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Message, Queue, SQSBackend

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.sqs import install_atomic_message_list

QUEUED = 12


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def slow_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each receipt-handle check of moto's delete takes 2 ms, so two deletes (or a delete and
    a send) started together overlap for certain, as they may by chance under load."""
    had_receipt_handle = Message.had_receipt_handle

    def slow(message: Any, receipt_handle: str) -> bool:
        time.sleep(0.002)
        return bool(had_receipt_handle(message, receipt_handle))

    monkeypatch.setattr(Message, "had_receipt_handle", slow)


@pytest.fixture
def fixed() -> Iterator[None]:
    patches = PatchSet()
    install_atomic_message_list(patches)
    yield
    patches.restore()


def _received_queue(sqs: Any) -> tuple[str, list[str]]:
    """A queue of ``QUEUED`` messages, all received once: their receipt handles."""
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for number in range(QUEUED):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{number}")
    handles: list[str] = []
    while len(handles) < QUEUED:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        handles += [message["ReceiptHandle"] for message in answer.get("Messages", [])]
    return url, handles


def _together(*calls: Callable[[], Any]) -> None:
    """Run ``calls`` in threads started at the same moment; re-raise the first failure."""
    start = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        try:
            call()
        except BaseException as error:  # handed to the test below, which re-raises it
            failures.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if failures:
        raise failures[0]


def _in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.usefixtures("slow_rebuild", "fixed")
def test_two_deletes_at_once_both_delete(sqs: Any) -> None:
    # GIVEN a queue whose messages were all received
    url, handles = _received_queue(sqs)
    # WHEN two batches delete their message at the same moment (one each)
    _together(
        lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[0]),
        lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[-1]),
    )
    # THEN both are gone: none comes back as in flight (moto alone: one delete undone)
    assert _in_flight(sqs, url) == QUEUED - 2


@pytest.mark.usefixtures("slow_rebuild", "fixed")
def test_a_message_moved_to_the_dead_letter_queue_beside_a_delete_is_only_there(
    sqs: Any,
) -> None:
    # GIVEN a queue that sends a message to its DLQ on the second receive, and messages all
    # received once and visible again
    letters = sqs.create_queue(QueueName="letters")["QueueUrl"]
    letters_arn = sqs.get_queue_attributes(QueueUrl=letters, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "RedrivePolicy": f'{{"deadLetterTargetArn": "{letters_arn}", "maxReceiveCount": 1}}'
        },
    )["QueueUrl"]
    for number in range(QUEUED):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{number}")
    handles: list[str] = []
    while len(handles) < QUEUED:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        handles += [message["ReceiptHandle"] for message in answer.get("Messages", [])]
    # WHEN one is deleted while a receive moves the others to the DLQ
    _together(
        lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[-1]),
        lambda: (time.sleep(0.005), sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)),
    )
    # THEN the deleted one is gone and the 11 others are letters, each once (moto alone: the
    # receive walks the list the delete is rebuilding and moves the deleted one as well)
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    letter_count = sqs.get_queue_attributes(
        QueueUrl=letters, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert letter_count == str(QUEUED - 1)


@pytest.mark.usefixtures("fixed")
def test_a_long_poll_lets_a_send_through(sqs: Any) -> None:
    # GIVEN an empty queue and a receive waiting up to 5 s on it, under the queue's lock
    url = sqs.create_queue(QueueName="empty")["QueueUrl"]
    received: list[list[str]] = []

    def poll() -> None:
        answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        received.append([message["Body"] for message in answer.get("Messages", [])])

    poller = threading.Thread(target=poll)
    started = time.monotonic()
    poller.start()
    time.sleep(0.3)
    # WHEN a message is sent meanwhile
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    poller.join(timeout=10)
    # THEN the send was not blocked by the waiting receive, which returns it at once
    assert received == [["hello"]]
    assert time.monotonic() - started < 4


def test_restoring_gives_moto_its_methods_back() -> None:
    # GIVEN the fix installed
    delete, receive = Queue.delete_message, SQSBackend.receive_message
    patches = PatchSet()
    install_atomic_message_list(patches)
    assert Queue.delete_message is not delete
    # WHEN restored / THEN both are moto's again
    patches.restore()
    assert Queue.delete_message is delete
    assert SQSBackend.receive_message is receive
