"""``install_receive_fixes``: moto's ReceiveMessage without its per-message O(queue) work,
answering as before (retention honoured, visibility and delays on the same clock)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.models import SQSBackend, sqs_backends

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.sqs import (
    fast_unix_time,
    fast_unix_time_millis,
    install_receive_fixes,
)

ACCOUNT = "123456789012"
RETENTION_SECONDS = 60  # SQS's minimum


@pytest.fixture
def fixed_sqs() -> Iterator[tuple[Any, str]]:
    """A queue keeping messages 60 s, in moto in-process with the receive fixes installed."""
    patches = PatchSet()
    with mock_aws():
        install_receive_fixes(patches)
        try:
            sqs = boto3.client("sqs", region_name="us-east-1")
            url = sqs.create_queue(
                QueueName="work", Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)}
            )["QueueUrl"]
            yield sqs, url
        finally:
            patches.restore()


def _age_every_message(seconds: float) -> None:
    """Pretend every message of the queue was sent ``seconds`` ago."""
    queue = sqs_backends[ACCOUNT]["us-east-1"].get_queue("work")
    for message in queue._messages:
        message.sent_timestamp -= int(seconds * 1000)


def _bodies(sqs: Any, url: str, **options: Any) -> list[str]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **options)
    return sorted(message["Body"] for message in response.get("Messages", []))


def test_messages_within_the_retention_period_are_delivered(
    fixed_sqs: tuple[Any, str],
) -> None:
    # GIVEN three messages sent 59 s ago to a queue keeping them 60 s
    sqs, url = fixed_sqs
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    _age_every_message(RETENTION_SECONDS - 1)

    # WHEN they are received
    received = _bodies(sqs, url)

    # THEN all three are delivered
    assert received == ["a", "b", "c"]


def test_a_message_past_the_retention_period_is_not_delivered(
    fixed_sqs: tuple[Any, str],
) -> None:
    # GIVEN a message sent 61 s ago to a queue keeping messages 60 s
    sqs, url = fixed_sqs
    sqs.send_message(QueueUrl=url, MessageBody="stale")
    _age_every_message(RETENTION_SECONDS + 1)

    # WHEN the queue is received from
    received = _bodies(sqs, url)

    # THEN the message is not delivered
    assert received == []


def test_visibility_timeout_and_delay_still_hide_messages(fixed_sqs: tuple[Any, str]) -> None:
    # GIVEN a message received once (visibility 1 s) and a message delayed 1 s
    sqs, url = fixed_sqs
    sqs.send_message(QueueUrl=url, MessageBody="seen")
    assert _bodies(sqs, url, VisibilityTimeout=1) == ["seen"]
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)

    # WHEN the queue is received from at once, then after both have passed
    early = _bodies(sqs, url)
    time.sleep(1.2)
    late = _bodies(sqs, url)

    # THEN neither was visible at first, both were afterwards
    assert early == []
    assert late == ["delayed", "seen"]


def test_the_fast_clock_reads_the_same_epoch_as_moto() -> None:
    # GIVEN moto's clock and the fast one, read back to back
    before = unix_time()
    fast = fast_unix_time()
    fast_millis = fast_unix_time_millis()
    after_millis = unix_time_millis()

    # WHEN / THEN they agree within the time between the reads
    assert before <= fast <= before + 0.5
    assert fast_millis <= after_millis <= fast_millis + 500


def test_the_fast_clock_converts_a_given_datetime_as_moto_does() -> None:
    # GIVEN a datetime
    moment = datetime.datetime(2026, 12, 2, 12, 0, 0, 250000)

    # WHEN / THEN both clocks give its epoch time exactly
    assert fast_unix_time(moment) == unix_time(moment) == 1796212800.25
    assert fast_unix_time_millis(moment) == unix_time_millis(moment) == 1796212800250.0


def test_receiving_computes_no_queue_attributes(
    fixed_sqs: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ten queued messages and a count of GetQueueAttributes computations
    sqs, url = fixed_sqs
    for n in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    computed: list[str] = []
    original = SQSBackend.get_queue_attributes

    def get_queue_attributes(backend: Any, queue_name: str, names: Any) -> Any:
        computed.append(queue_name)
        return original(backend, queue_name, names)

    monkeypatch.setattr(SQSBackend, "get_queue_attributes", get_queue_attributes)

    # WHEN all ten are received
    received = _bodies(sqs, url)

    # THEN none of them cost an attribute computation (moto's check made one per message)
    assert len(received) == 10
    assert computed == []
