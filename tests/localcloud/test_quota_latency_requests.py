"""DetectLabels' TPS quota and latency, the worker cap per function, and the request log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tests.localcloud.test_sample_app import ByteSizeLabeler
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.errors import LocalCloudError
from tweetlens.localcloud.rekognition import DetectLabelsQuota

pytestmark = pytest.mark.integration

# Far below one token a second: no refill can happen during a test.
NO_REFILL_TPS = 0.0001


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        SAMPLE_TEMPLATE,
        labeler=ByteSizeLabeler(),
        time_scale=0.01,
        run_schedules=False,
        run_pollers=False,
        function_concurrency=1,
    ) as local_cloud:
        yield local_cloud


def _detect(cloud: LocalCloud) -> str:
    try:
        cloud.client("rekognition").detect_labels(Image={"Bytes": b"image"})
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "answered"


def test_calls_beyond_the_quota_are_refused_like_the_service(cloud: LocalCloud) -> None:
    # GIVEN a quota whose bucket holds two calls and does not refill during the test
    assert cloud.rekognition is not None
    throttled_before = cloud.rekognition.throttled()
    cloud.set_detect_labels_quota(NO_REFILL_TPS, burst=2)
    try:
        # WHEN three calls arrive at once
        outcomes = [_detect(cloud) for _ in range(3)]
    finally:
        cloud.set_detect_labels_quota(None)
    # THEN two are answered and the third gets the service's quota error, counted
    assert outcomes == ["answered", "answered", "ProvisionedThroughputExceededException"]
    assert cloud.rekognition.throttled() - throttled_before == 1


def test_no_quota_refuses_nothing(cloud: LocalCloud) -> None:
    # GIVEN no quota / WHEN five calls arrive at once / THEN all are answered
    cloud.set_detect_labels_quota(None)
    assert [_detect(cloud) for _ in range(5)] == ["answered"] * 5


def test_injected_latency_delays_every_admitted_call(cloud: LocalCloud) -> None:
    # GIVEN 0.3 s of injected latency
    cloud.set_detect_labels_latency(0.3)
    try:
        # WHEN a call is made
        started = time.monotonic()
        outcome = _detect(cloud)
        elapsed = time.monotonic() - started
    finally:
        cloud.set_detect_labels_latency(0.0)
    # THEN it is answered no sooner than the latency
    assert outcome == "answered"
    assert elapsed >= 0.3


def test_a_throttled_call_is_refused_without_the_latency(cloud: LocalCloud) -> None:
    # GIVEN a bucket whose only token was taken, then a long latency
    cloud.set_detect_labels_quota(NO_REFILL_TPS, burst=1)
    try:
        assert _detect(cloud) == "answered"
        cloud.set_detect_labels_latency(5.0)
        started = time.monotonic()
        # WHEN the next call arrives
        outcome = _detect(cloud)
        elapsed = time.monotonic() - started
    finally:
        cloud.set_detect_labels_quota(None)
        cloud.set_detect_labels_latency(0.0)
    # THEN it is refused at once, as the service refuses before doing any work
    assert outcome == "ProvisionedThroughputExceededException"
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("tps", "burst", "message"),
    [
        (0.0, None, "positive number of requests/s"),
        (-1.0, None, "positive number of requests/s"),
        (float("nan"), None, "positive number of requests/s"),
        (1.0, 0, "burst must be at least 1"),
    ],
)
def test_a_bad_quota_is_refused(tps: float, burst: int | None, message: str) -> None:
    # GIVEN a bad quota / WHEN it is made / THEN it is refused, naming the problem
    with pytest.raises(ValueError, match=message):
        DetectLabelsQuota(tps, burst=burst)


@pytest.mark.parametrize("seconds", [-0.1, float("inf")])
def test_a_bad_latency_is_refused(cloud: LocalCloud, seconds: float) -> None:
    with pytest.raises(ValueError, match="zero or more seconds"):
        cloud.set_detect_labels_latency(seconds)


def test_the_quota_refills_at_its_rate() -> None:
    # GIVEN a 2 TPS quota with a burst of 2 on a hand-driven clock
    now = [0.0]
    quota = DetectLabelsQuota(2.0, clock=lambda: now[0])
    # WHEN three calls come at t=0, and one more 0.5 s later
    first = [quota.admit() for _ in range(3)]
    now[0] = 0.5
    later = quota.admit()
    # THEN the burst is spent, the third refused, and half a second buys one token
    assert first == [True, True, False]
    assert later is True
    assert quota.burst == 2


def test_quota_or_latency_needs_a_labeler() -> None:
    # GIVEN no labeler / WHEN a quota is asked for / THEN the cloud refuses to be built
    with pytest.raises(ValueError, match="needs a labeler"):
        LocalCloud(SAMPLE_TEMPLATE, detect_labels_tps=5.0)
    with pytest.raises(LocalCloudError, match="no labeler"):
        LocalCloud(SAMPLE_TEMPLATE).set_detect_labels_quota(1.0)


def test_functions_get_the_workers_their_mappings_may_use(cloud: LocalCloud) -> None:
    # GIVEN function_concurrency=1, a mapping with MaximumConcurrency 2, reserved concurrency 2
    # WHEN the worker caps are read
    caps = {
        name: cloud.worker_cap(name)
        for name in ("WorkerFunction", "InspectorFunction", "SleeperFunction")
    }
    # THEN the mapped function may run as many as its poller, the others their own setting
    assert caps == {"WorkerFunction": 2, "InspectorFunction": 1, "SleeperFunction": 2}


def test_request_log_counts_the_applications_calls_not_the_observers(
    cloud: LocalCloud,
) -> None:
    # GIVEN a clean request log
    cloud.requests.reset()
    table = cloud.resources["ItemsTable"]
    queue = cloud.resources["WorkQueue"]
    dynamodb, sqs = cloud.client("dynamodb"), cloud.client("sqs")
    # WHEN the application writes a small and a 5 KB item, reads one back, sends two
    # messages, and an observer reads the queue's attributes and scans the table
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "small"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "big"}, "blob": {"S": "x" * 5000}})
    dynamodb.get_item(TableName=table, Key={"pk": {"S": "small"}})
    dynamodb.get_item(TableName=table, Key={"pk": {"S": "big"}}, ConsistentRead=True)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    cloud.observer_client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    cloud.observer_client("dynamodb").scan(TableName=table)
    stats = cloud.requests.stats()
    # THEN only the application's calls are counted, with DynamoDB's units estimated
    assert stats.requests == {
        "dynamodb:PutItem": 2,
        "dynamodb:GetItem": 2,
        "sqs:SendMessage": 2,
    }
    assert stats.dynamodb_write_units == 1 + 5
    assert stats.dynamodb_read_units == 0.5 + 2
    assert stats.count("sqs") == 2
    assert stats.count("dynamodb", ["GetItem"]) == 2


def test_request_log_counts_a_refused_conditional_write(cloud: LocalCloud) -> None:
    # GIVEN an existing item
    table = cloud.resources["ItemsTable"]
    dynamodb = cloud.client("dynamodb")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "taken"}})
    cloud.requests.reset()
    # WHEN a conditional write on it is refused
    with pytest.raises(ClientError):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": "taken"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    # THEN it still consumed its write unit, as in AWS
    assert cloud.requests.stats().dynamodb_write_units == 1


def test_warm_up_starts_workers_that_serve_warm_invocations(cloud: LocalCloud) -> None:
    # GIVEN a function never invoked, whose cap is 2
    # WHEN two workers are started ahead
    ready = cloud.warm_up("WorkerFunction", 5)
    result = cloud.invoke("WorkerFunction", {"Records": []})
    # THEN the cap bounds them, and the next invocation is not a cold start
    assert ready == 2
    assert result.cold_start is False
    assert "Init Duration" not in result.report
