"""SendMessageBatch: 10 per call, transient failures retried, refusals returned, none dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from common.messages import PhotoMessage
from producer.letters import PostLetter
from producer.publisher import (
    BatchSender,
    DeadLetterError,
    DeadLetterQueue,
    PublishError,
    Refusal,
    RefusedMessage,
    SqsPublisher,
)

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-test-cats"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-test-producer-dlq"
INVALID_CONTENTS = {
    "SenderFault": True,
    "Code": "InvalidMessageContents",
    "Message": "Invalid binary character '#xFFFF' was found in the message body",
}


def photo_messages(count: int) -> list[PhotoMessage]:
    return [
        PhotoMessage(
            url=f"https://pbs.twimg.com/media/GdXk{index:011d}.jpg",
            post_id=str(1861704939338346519 - index),
            media_key=f"3_{1861704784149098508 - index}",
            text="my #cat",
            hashtags=["cat"],
            route="cats",
        )
        for index in range(count)
    ]


def entries(messages: list[PhotoMessage], ids: list[int]) -> list[dict[str, str]]:
    return [{"Id": str(i), "MessageBody": messages[i].model_dump_json()} for i in ids]


def sent(ids: list[int]) -> dict[str, Any]:
    return {
        "Successful": [
            {"Id": str(i), "MessageId": f"m-{i}", "MD5OfMessageBody": "0" * 32} for i in ids
        ],
        "Failed": [],
    }


def publisher(sqs: Any, sleeps: list[float]) -> SqsPublisher:
    return SqsPublisher(BatchSender(sqs, sleep=sleeps.append), {"cats": QUEUE_URL})


def internal_error(ids: list[int], ok: list[int]) -> dict[str, Any]:
    return {
        **sent(ok),
        "Failed": [
            {
                "Id": str(i),
                "SenderFault": False,
                "Code": "InternalError",
                "Message": "We encountered an internal error.",
            }
            for i in ids
        ],
    }


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stubber:
        yield sqs, stubber
        stubber.assert_no_pending_responses()


def test_messages_go_out_in_batches_of_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        # GIVEN a queue and 25 messages
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="tweetlens-test-cats")["QueueUrl"]
        batch_sizes: list[int] = []
        sqs.meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: batch_sizes.append(len(params["Entries"])),
        )
        messages = photo_messages(25)

        # WHEN they are published
        refused = SqsPublisher(BatchSender(sqs), {"cats": queue_url}).publish("cats", messages)

        # THEN three calls carry them all, each body the message's JSON
        assert (refused, batch_sizes) == ([], [10, 10, 5])
        bodies: list[dict[str, Any]] = []
        while received := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            bodies.extend(json.loads(message["Body"]) for message in received)
        assert sorted(bodies, key=lambda body: body["url"]) == [
            message.model_dump() for message in messages
        ]


def test_only_failed_entries_are_retried(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN SQS fails entries 3 and 7 of the first batch once
    sqs, stubber = stubbed
    messages = photo_messages(12)
    first = list(range(10))
    stubber.add_response(
        "send_message_batch",
        internal_error([3, 7], ok=[0, 1, 2, 4, 5, 6, 8, 9]),
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, first)},
    )
    stubber.add_response(
        "send_message_batch",
        sent([3, 7]),
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [3, 7])},
    )
    stubber.add_response(
        "send_message_batch",
        sent([10, 11]),
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [10, 11])},
    )
    sleeps: list[float] = []

    # WHEN the 12 messages are published
    refused = publisher(sqs, sleeps).publish("cats", messages)

    # THEN only the two failed entries were sent again, after one short jittered pause
    assert refused == []
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.2


def test_entries_that_keep_failing_raise_publish_error(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN SQS fails entry 0 on every one of the four attempts
    sqs, stubber = stubbed
    messages = photo_messages(2)
    stubber.add_response(
        "send_message_batch",
        internal_error([0], ok=[1]),
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [0, 1])},
    )
    for _ in range(3):
        stubber.add_response(
            "send_message_batch",
            internal_error([0], ok=[]),
            {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [0])},
        )
    sleeps: list[float] = []

    # WHEN they are published
    with pytest.raises(PublishError) as raised:
        publisher(sqs, sleeps).publish("cats", messages)

    # THEN the error names the route and the entry, after growing pauses between attempts
    assert str(raised.value) == (
        "1 message(s) not sent to route cats: 0: InternalError We encountered an internal error."
    )
    assert (raised.value.route, raised.value.failures) == (
        "cats",
        {"0": "InternalError We encountered an internal error."},
    )
    assert len(sleeps) == 3
    assert all(
        0 <= pause <= ceiling for pause, ceiling in zip(sleeps, [0.2, 0.4, 0.8], strict=True)
    )


def test_a_refused_call_raises_publish_error_for_every_entry(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN SQS refuses the call itself
    sqs, stubber = stubbed
    stubber.add_client_error(
        "send_message_batch",
        service_error_code="AWS.SimpleQueueService.NonExistentQueue",
        service_message="The specified queue does not exist.",
        http_status_code=400,
    )

    # WHEN two messages are published THEN both are reported unsent
    with pytest.raises(PublishError) as raised:
        publisher(sqs, []).publish("cats", photo_messages(2))
    assert raised.value.failures == {
        "0": "AWS.SimpleQueueService.NonExistentQueue",
        "1": "AWS.SimpleQueueService.NonExistentQueue",
    }


def test_entries_refused_as_the_senders_fault_are_returned_not_retried(
    stubbed: tuple[Any, Stubber],
) -> None:
    # GIVEN SQS refuses entry 1 for its contents and fails entry 2 on its side, once
    sqs, stubber = stubbed
    messages = photo_messages(3)
    stubber.add_response(
        "send_message_batch",
        {
            **sent([0]),
            "Failed": [
                {"Id": "1", **INVALID_CONTENTS},
                internal_error([2], ok=[])["Failed"][0],
            ],
        },
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [0, 1, 2])},
    )
    stubber.add_response(
        "send_message_batch",
        sent([2]),
        {"QueueUrl": QUEUE_URL, "Entries": entries(messages, [2])},
    )
    sleeps: list[float] = []

    # WHEN the three messages are published
    refused = publisher(sqs, sleeps).publish("cats", messages)

    # THEN only the transient failure was sent again, and the refused one comes back with
    # SQS's code and message, for a dead letter
    assert refused == [
        RefusedMessage(
            message=messages[1],
            refusal=Refusal(
                code="InvalidMessageContents",
                message="Invalid binary character '#xFFFF' was found in the message body",
            ),
        )
    ]
    assert len(sleeps) == 1


def test_dead_letter_queue_writes_each_letter_as_ascii_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        # GIVEN a dead-letter queue and a letter whose post text has a lone surrogate
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="tweetlens-test-producer-dlq")["QueueUrl"]
        letter = PostLetter(
            reason="text: Value error, contains a lone surrogate (U+D800) at 3",
            query="(#cat) has:images -is:retweet",
            raw={"id": "1861704939338346519", "text": "my \ud800 #cat"},
            post_id="1861704939338346519",
        )

        # WHEN it is sent
        DeadLetterQueue(BatchSender(sqs), queue_url).send([letter])

        # THEN the body is ASCII JSON that reads back as the letter
        (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
        assert message["Body"] == (
            '{"reason":"text: Value error, contains a lone surrogate (U+D800) at 3",'
            '"query":"(#cat) has:images -is:retweet",'
            '"raw":{"id":"1861704939338346519","text":"my \\ud800 #cat"},'
            '"raw_truncated":false,"kind":"post","error":"InvalidPost",'
            '"post_id":"1861704939338346519"}'
        )


def test_a_dead_letter_sqs_refuses_fails_the_run(stubbed: tuple[Any, Stubber]) -> None:
    # GIVEN SQS refuses the one letter
    sqs, stubber = stubbed
    stubber.add_response(
        "send_message_batch", {"Successful": [], "Failed": [{"Id": "0", **INVALID_CONTENTS}]}
    )
    letter = PostLetter(reason="id: Field required", query="q", raw={}, post_id=None)

    # WHEN it is sent THEN the run fails: nothing else can hold its data
    with pytest.raises(DeadLetterError) as raised:
        DeadLetterQueue(BatchSender(sqs), DLQ_URL).send([letter])
    assert str(raised.value) == (
        "1 dead letter(s) not written: 0: InvalidMessageContents "
        "Invalid binary character '#xFFFF' was found in the message body"
    )
