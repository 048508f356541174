"""The local cloud's fault hooks, against moto in-process: no network."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sqs.responses import SQSResponse

from classifier.pacing import WINDOW_PREFIX
from tweetlens.chaos.faults import START_RATE_PREFIX, SharedQuota, StartLimiterProbe
from tweetlens.localcloud import (
    CallerKiller,
    DynamoDbRequestFaults,
    DynamoDbThrottleBursts,
    FaultError,
    LabelerError,
    LabelRequest,
    MessageLedger,
    PatchSet,
    RekognitionFaults,
    SendBatchFailures,
    compress_visibility_timeouts,
)

REGION = "us-east-1"
# One attempt: the test must see the throttle itself, not botocore's retry of it.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def patches() -> Iterator[PatchSet]:
    patch_set = PatchSet()
    yield patch_set
    patch_set.restore()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _request(source: str) -> LabelRequest:
    return LabelRequest(source, "0" * 64, b"", 10, 55.0)


def test_throttle_bursts_follow_their_period() -> None:
    # GIVEN bursts of 2 after every 3 requests
    faults = DynamoDbThrottleBursts(every=3, burst=2)
    # WHEN ten requests arrive
    pattern = [faults.should_throttle() for _ in range(10)]
    # THEN requests 4-5 and 9-10 are throttled
    assert pattern == [False, False, False, True, True, False, False, False, True, True]


def test_stopped_throttle_bursts_throttle_nothing_and_keep_their_counts() -> None:
    # GIVEN bursts of 2 after every request, one request in and one throttled
    faults = DynamoDbThrottleBursts(every=1, burst=2)
    before = [faults.should_throttle() for _ in range(2)]
    # WHEN they are stopped (the chaos run is idle and about to check) and more requests arrive
    faults.stop()
    after = [faults.should_throttle() for _ in range(3)]
    # THEN none of those is throttled
    assert (before, after) == ([False, True], [False, False, False])


@mock_aws
def test_dynamodb_answers_provisioned_throughput_exceeded(patches: PatchSet) -> None:
    # GIVEN a table and a burst of one after every request
    dynamodb = boto3.client("dynamodb", region_name=REGION, config=NO_RETRIES)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    faults = DynamoDbThrottleBursts(every=1, burst=1)
    faults.install(patches)
    item = {"pk": {"S": "a"}}
    # WHEN two writes are made
    dynamodb.put_item(TableName="t", Item=item)
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName="t", Item=item)
    # THEN the second is throttled as DynamoDB does, and counted
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert dict(faults.throttled) == {"put_item": 1}
    # AND once restored, DynamoDB answers normally again
    patches.restore()
    for _ in range(3):
        dynamodb.put_item(TableName="t", Item=item)


def test_rekognition_throttles_above_its_rate() -> None:
    # GIVEN a quota of 2 calls per second, no burst saved up
    clock = FakeClock()
    faults = RekognitionFaults(requests_per_second=2, clock=clock)
    # WHEN a second call follows the first by 0.1 s
    faults(_request("s3://b/1"))
    clock.now += 0.1
    with pytest.raises(LabelerError) as raised:
        faults(_request("s3://b/2"))
    # THEN it is throttled and not counted as answered
    assert raised.value.code == "ThrottlingException"
    assert (faults.throttled, dict(faults.accepted)) == (1, {"s3://b/1": 1})
    # AND half a second later there is a token again
    clock.now += 0.5
    faults(_request("s3://b/2"))
    assert dict(faults.accepted) == {"s3://b/1": 1, "s3://b/2": 1}


def test_rekognition_burst_is_saved_up() -> None:
    # GIVEN a quota of 1 call per second with a burst of 3, idle for a while
    clock = FakeClock()
    faults = RekognitionFaults(requests_per_second=1, burst=3, clock=clock)
    clock.now += 10
    # WHEN four calls arrive at once
    for index in range(3):
        faults(_request(f"s3://b/{index}"))
    with pytest.raises(LabelerError):
        faults(_request("s3://b/3"))
    # THEN three pass and the fourth is throttled
    assert (sum(faults.accepted.values()), faults.throttled) == (3, 1)


def test_rekognition_refuses_an_invalid_image() -> None:
    # GIVEN an image marked as invalid
    faults = RekognitionFaults(requests_per_second=10, burst=2, invalid_sources={"s3://b/bad"})
    # WHEN it is labelled
    with pytest.raises(LabelerError) as raised:
        faults(_request("s3://b/bad"))
    # THEN Rekognition answers InvalidImageFormatException: a call past the rate limit, but
    # no labels
    assert raised.value.code == "InvalidImageFormatException"
    assert (faults.invalid, dict(faults.accepted)) == (1, {"s3://b/bad": 1})
    assert dict(faults.labelled) == {}
    # AND a valid image's call is both
    faults(_request("s3://b/good"))
    assert dict(faults.labelled) == {"s3://b/good": 1}


@mock_aws
def test_ledger_records_accepted_messages_of_its_queues(patches: PatchSet) -> None:
    # GIVEN a watched queue and another one
    sqs = boto3.client("sqs", region_name=REGION)
    watched = sqs.create_queue(QueueName="watched")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    ledger = MessageLedger({"watched"})
    ledger.install(patches)
    # WHEN messages are sent to both
    sent = sqs.send_message_batch(
        QueueUrl=watched,
        Entries=[{"Id": "0", "MessageBody": "a"}, {"Id": "1", "MessageBody": "b"}],
    )
    sqs.send_message(QueueUrl=other, MessageBody="c")
    # THEN only the watched queue's messages are recorded, under SQS's message ids
    ids = [entry["MessageId"] for entry in sent["Successful"]]
    assert ledger.messages() == {ids[0]: ("watched", "a"), ids[1]: ("watched", "b")}


@mock_aws
def test_scripted_dynamodb_error_answers_the_next_matching_request_once(
    patches: PatchSet,
) -> None:
    # GIVEN a table and one scripted failure of a PutItem for key "b"
    dynamodb = boto3.client("dynamodb", region_name=REGION, config=NO_RETRIES)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    faults = DynamoDbRequestFaults()
    faults.install(patches)
    is_b = lambda body: body["Item"]["pk"]["S"] == "b"  # noqa: E731
    faults.fail_next("PutItem", is_b, "ConditionalCheckFailedException", "scripted")
    # WHEN "a", then "b" twice, are put
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "b"}})
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "b"}})
    # THEN only the first "b" failed, with the scripted error; every request was recorded
    assert raised.value.response["Error"] == {
        "Code": "ConditionalCheckFailedException",
        "Message": "scripted",
    }
    assert dynamodb.scan(TableName="t")["Count"] == 2
    assert (faults.count("PutItem", is_b), faults.count("PutItem", lambda _: True)) == (2, 3)


def test_scripted_dynamodb_error_refuses_an_unwatched_operation() -> None:
    # GIVEN / WHEN a failure of an operation it does not watch / THEN it is refused by name
    with pytest.raises(FaultError, match="Query is not one of"):
        DynamoDbRequestFaults().fail_next("Query", lambda _: True, "X", "y")


def _entries(*bodies: str) -> list[dict[str, str]]:
    return [{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)]


@mock_aws
def test_send_batch_fails_one_entry_on_sqs_side_once(patches: PatchSet) -> None:
    # GIVEN one transient entry failure on a watched queue, and a ledger of accepted messages
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="watched")["QueueUrl"]
    ledger = MessageLedger({"watched"})
    ledger.install(patches)
    faults = SendBatchFailures({"watched"}, transient=1)
    faults.install(patches)
    # WHEN a batch is sent, then its failed entry again
    first = sqs.send_message_batch(QueueUrl=queue, Entries=_entries("a", "b"))
    retry = sqs.send_message_batch(QueueUrl=queue, Entries=_entries("a"))
    # THEN the first entry failed on SQS's side and the rest of the batch was accepted
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in first["Failed"]] == [
        ("0", "InternalError", False)
    ]
    assert [entry["Id"] for entry in first["Successful"]] == ["1"]
    # AND the same message sent again is accepted: the failure passed
    assert (len(retry["Successful"]), retry.get("Failed", [])) == (1, [])
    assert sorted(body for _queue, body in ledger.messages().values()) == ["a", "b"]
    assert (faults.transient_failures, faults.refusals) == (1, 0)


@mock_aws
def test_send_batch_refuses_a_chosen_message_every_time(patches: PatchSet) -> None:
    # GIVEN a watched queue refusing the body "poison", and an unwatched queue
    sqs = boto3.client("sqs", region_name=REGION)
    watched = sqs.create_queue(QueueName="watched")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    faults = SendBatchFailures({"watched"}, transient=0, refuse=lambda body: body == "poison")
    faults.install(patches)
    # WHEN the body is sent twice to the watched queue and once to the other
    sent = [
        sqs.send_message_batch(QueueUrl=watched, Entries=_entries("ok", "poison")) for _ in range(2)
    ]
    elsewhere = sqs.send_message_batch(QueueUrl=other, Entries=_entries("poison"))
    # THEN each time it is refused as the sender's fault, the rest accepted
    assert [
        [(f["Id"], f["Code"], f["SenderFault"]) for f in answer["Failed"]] for answer in sent
    ] == [[("1", "InvalidMessageContents", True)]] * 2
    assert [len(answer["Successful"]) for answer in sent] == [1, 1]
    # AND the unwatched queue takes it
    assert (len(elsewhere["Successful"]), elsewhere.get("Failed", [])) == (1, [])
    assert (faults.transient_failures, faults.refusals) == (0, 2)


@mock_aws
def test_send_batch_with_every_entry_failed_sends_nothing(patches: PatchSet) -> None:
    # GIVEN a queue refusing every body
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="watched")["QueueUrl"]
    SendBatchFailures({"watched"}, transient=0, refuse=lambda _body: True).install(patches)
    # WHEN a batch is sent
    answer = sqs.send_message_batch(QueueUrl=queue, Entries=_entries("a", "b"))
    # THEN every entry is refused and the queue stays empty
    assert [f["Id"] for f in answer["Failed"]] == ["0", "1"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_send_batch_failures_refuse_a_negative_count() -> None:
    # GIVEN / WHEN a negative number of transient failures / THEN it is refused
    with pytest.raises(FaultError, match="transient must not be negative"):
        SendBatchFailures({"q"}, transient=-1)


@mock_aws
def test_visibility_timeouts_are_compressed(patches: PatchSet) -> None:
    # GIVEN a 10 s visibility timeout passing 100 times faster
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    compress_visibility_timeouts(patches, 0.01)
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    first = sqs.receive_message(QueueUrl=queue)["Messages"]
    # WHEN 0.3 s pass
    time.sleep(0.3)
    # THEN the message is received again
    again = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in first]


def test_throttle_bursts_refuse_a_zero_period() -> None:
    # GIVEN / WHEN / THEN a period of 0 is refused
    with pytest.raises(FaultError, match="at least 1"):
        DynamoDbThrottleBursts(every=0, burst=1)


def test_throttle_bursts_refuse_control_plane_operations() -> None:
    # GIVEN / WHEN / THEN an operation outside the data plane is refused
    with pytest.raises(FaultError, match="create_table"):
        DynamoDbThrottleBursts(every=1, burst=1, operations=("create_table",))


def test_rekognition_refuses_a_zero_rate() -> None:
    # GIVEN / WHEN / THEN a rate of 0 is refused
    with pytest.raises(FaultError, match="positive"):
        RekognitionFaults(requests_per_second=0)


def test_rekognition_refuses_a_zero_burst() -> None:
    # GIVEN / WHEN / THEN a burst of 0 (no call could ever pass) is refused
    with pytest.raises(FaultError, match="burst"):
        RekognitionFaults(requests_per_second=1, burst=0)


def test_killer_refuses_an_unknown_action() -> None:
    # GIVEN / WHEN / THEN an action the response class does not serve is refused
    with pytest.raises(FaultError, match="no action 'fly'"):
        CallerKiller(SQSResponse, "fly", handler="app.handler", after=1)


def test_killer_refuses_call_zero() -> None:
    # GIVEN / WHEN / THEN "after 0 calls" is refused
    with pytest.raises(FaultError, match="at least 1"):
        CallerKiller(SQSResponse, "send_message_batch", handler="app.handler", after=0)


def test_visibility_compression_refuses_a_zero_factor(patches: PatchSet) -> None:
    # GIVEN / WHEN / THEN a factor of 0 is refused
    with pytest.raises(FaultError, match="factor"):
        compress_visibility_timeouts(patches, 0)


def test_another_caller_takes_the_quota_from_the_first_call_on() -> None:
    # GIVEN a quota of 100 calls a second that another caller takes whole for 1 s of every 10,
    # counted from the pipeline's first call
    clock = FakeClock()
    quota = SharedQuota(every=10, seconds=1, requests_per_second=100, clock=clock)
    # WHEN calls come 0 s, 0.9 s, 1.0 s, 9.9 s and 10.5 s after the first
    answered = []
    codes = []
    for at in (0.0, 0.9, 1.0, 9.9, 10.5):
        clock.now = 100.0 + at
        try:
            quota(_request(f"s3://b/{at}"))
            answered.append(at)
        except LabelerError as raised:
            codes.append(raised.code)
    # THEN those inside a burst are throttled, counted as the other caller's, and not answered
    assert (answered, codes) == ([1.0, 9.9], ["ThrottlingException"] * 3)
    assert (quota.throttled, quota.throttled_by_neighbour) == (3, 3)
    assert sorted(quota.accepted) == ["s3://b/1.0", "s3://b/9.9"]


def test_without_another_caller_only_the_rate_throttles() -> None:
    # GIVEN the quota with no other caller
    clock = FakeClock()
    quota = SharedQuota(every=None, seconds=1, requests_per_second=100, clock=clock)
    # WHEN a call comes / THEN it is answered
    quota(_request("s3://b/1"))
    assert (quota.throttled, sum(quota.accepted.values())) == (0, 1)


@mock_aws
def test_the_limiter_probe_counts_window_writes_and_refusals(patches: PatchSet) -> None:
    # GIVEN a results table and the probe, and a window that grants one start
    dynamodb = boto3.client("dynamodb", region_name=REGION, config=NO_RETRIES)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    probe = StartLimiterProbe()
    probe.install(patches)

    def take(pk: str) -> None:
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": pk}, "sk": {"S": "WINDOW"}},
            UpdateExpression="ADD starts :one",
            ConditionExpression="attribute_not_exists(starts) OR starts < :limit",
            ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": "1"}},
        )

    def release(pk: str) -> None:
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": pk}, "sk": {"S": "WINDOW"}},
            UpdateExpression="ADD starts :minus_one",
            ConditionExpression="starts > :zero",
            ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
        )

    # WHEN two starts take the same window, another item is updated, and a release finds a
    # window already at 0 (a slot given back twice)
    take("START_RATE#100")
    with pytest.raises(ClientError) as raised:
        take("START_RATE#100")
    take("https://example.com/a.jpg")
    release("START_RATE#100")
    with pytest.raises(ClientError) as released:
        release("START_RATE#100")
    # THEN the second take was refused by its condition and counts as a start held back; the
    # refused release is a write but holds nothing back; the other item is not the limiter's
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert released.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert (probe.writes, probe.refused) == (4, 1)


def test_the_limiter_probe_knows_the_classifiers_window_keys() -> None:
    # GIVEN the probe's key prefix (the tooling does not import the functions' code)

    # WHEN it is compared with the prefix the classifier's limiter writes under
    # THEN they are the same: renamed on one side only, the probe would count no write
    assert START_RATE_PREFIX == WINDOW_PREFIX
