"""STANDARD start pacing: the pacer itself, and the classifier's paced start path.

Time is a fake monotonic clock that only ``sleep`` moves, so every wait is asserted exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from classifier.logic import START_MARGIN_SECONDS, Classifier
from classifier.models import RouteQueueRecord
from classifier.pacing import StartPacer
from classifier.settings import load_settings
from common.messages import PhotoMessage, execution_name
from tests.unit.classifier.classifier_testkit import Cloud, client_error, load_event

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# Where the fake monotonic clock starts, and the wall clock at that moment.
START = 100.0
WALL = 1_732_700_000


class FakeTime:
    """A monotonic clock that moves only when something sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# ------------------------------------------------------------------------ the pacer


def test_first_acquisition_is_immediate_and_the_next_ones_are_evenly_spaced() -> None:
    # GIVEN a pacer of 4 per second that has not started anything yet
    time = FakeTime()
    pacer = StartPacer(4.0, clock=time.monotonic, sleep=time.sleep)

    # WHEN it is asked for three slots in a row, without limit
    taken = [pacer.acquire(None) for _ in range(3)]

    # THEN the first is free at once and each next one waits a quarter of a second
    assert taken == [True, True, True]
    assert time.sleeps == [0.25, 0.25]
    assert time.now == START + 0.5


def test_an_idle_pacer_does_not_wait() -> None:
    # GIVEN a pacer of 2 per second whose last slot was taken 3 s ago
    time = FakeTime()
    pacer = StartPacer(2.0, clock=time.monotonic, sleep=time.sleep)
    pacer.acquire(None)
    time.now += 3.0

    # WHEN it is asked for a slot
    # THEN it gives one without sleeping (no credit is saved up beyond that one slot)
    assert pacer.wait_seconds() == 0.0
    assert pacer.acquire(None) is True
    assert time.sleeps == []
    assert pacer.wait_seconds() == 0.5


def test_a_wait_longer_than_the_budget_is_refused_without_sleeping() -> None:
    # GIVEN a pacer of 1 per second whose next slot is 1 s away
    time = FakeTime()
    pacer = StartPacer(1.0, clock=time.monotonic, sleep=time.sleep)
    pacer.acquire(None)

    # WHEN a slot is asked for with only 0.5 s to spare
    refused = pacer.acquire(0.5)

    # THEN it is refused at once, and the slot is still there for a caller with time
    assert refused is False
    assert time.sleeps == []
    assert pacer.acquire(1.0) is True
    assert time.sleeps == [1.0]


def test_a_released_slot_is_given_to_the_next_acquisition() -> None:
    # GIVEN a pacer of 1 per second whose second slot was taken (after a 1 s wait) and
    # then released because nothing was started with it
    time = FakeTime()
    pacer = StartPacer(1.0, clock=time.monotonic, sleep=time.sleep)
    pacer.acquire(None)
    pacer.acquire(None)
    pacer.release()

    # WHEN the next slot is asked for
    pacer.acquire(None)

    # THEN it is the released one: no second wait
    assert time.sleeps == [1.0]
    assert time.now == START + 1.0


def test_a_sleep_that_overruns_does_not_push_later_slots_back() -> None:
    # GIVEN a pacer of 1 per second whose sleep oversleeps by 0.25 s
    time = FakeTime()
    asked: list[float] = []

    def late_sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds + 0.25)

    pacer = StartPacer(1.0, clock=time.monotonic, sleep=late_sleep)

    # WHEN three slots are taken
    for _ in range(3):
        pacer.acquire(None)

    # THEN the third asks only for what is left to its slot (START + 2), not a whole second
    assert asked == [1.0, 0.75]
    assert time.now == START + 2.25


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_a_rate_that_is_no_positive_number_is_refused(rate: float) -> None:
    # GIVEN / WHEN a pacer is made with it / THEN it says why
    time = FakeTime()
    with pytest.raises(ValueError, match="the start rate must be a positive number per second"):
        StartPacer(rate, clock=time.monotonic, sleep=time.sleep)


# ------------------------------------------------------------------------ the classifier


def paced_classifier(
    cloud: Cloud,
    metrics: Metrics,
    time: FakeTime,
    *,
    rate: str,
    stepfunctions: object | None = None,
    environment: dict[str, str] | None = None,
) -> Classifier:
    """A STANDARD classifier with MaximumConcurrency 5 and two route queues: each container's
    share is rate / 10 starts a second. Its wall clock follows the fake monotonic one."""
    return Classifier(
        settings=load_settings(
            cloud.environment()
            | {"DETECT_LABELS_RATE": rate, "CLASSIFIER_MAX_CONCURRENCY": "5"}
            | (environment or {})
        ),
        sqs=cloud.sqs,
        stepfunctions=cast("SFNClient", stepfunctions or cloud.stepfunctions),
        dynamodb=cloud.dynamodb,
        metrics=metrics,
        clock=lambda: WALL + time.now - START,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )


def process(
    classifier: Classifier, event: dict[str, Any], remaining_ms: Any = None
) -> PartialItemFailureResponse:
    """What app.lambda_handler does, with a given Classifier and time left."""
    batch = classifier.open_batch(event["Records"], remaining_ms=remaining_ms)
    processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)
    return process_partial_response(
        event=event, record_handler=batch.handle_record, processor=processor
    )


def url_of(event: dict[str, Any], index: int) -> str:
    return PhotoMessage.model_validate_json(event["Records"][index]["body"]).url


def started(cloud: Cloud) -> dict[str, int]:
    """Every execution's name -> requested_at of its input."""
    return {name: given["requested_at"] for name, given in cloud.executions().items()}


def counted(metrics: Metrics) -> dict[str, float]:
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


# The batch sample: 8 new images (records 0, 1, 3, 5-9), an invalid body (2), a copy of 0 (4).
STARTING = (0, 1, 3, 5, 6, 7, 8, 9)


def test_a_batch_of_new_images_starts_at_the_containers_share(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN DetectLabelsRate 10/s shared by 2 queues x 5 invocations: 1 start a second here
    time = FakeTime()
    classifier = paced_classifier(cloud, metrics, time, rate="10")
    event = load_event("classifier_sqs_batch.json")

    # WHEN the batch sample is processed
    response = process(classifier, event)

    # THEN its 8 new images start one a second (7 waits); the rejected body and the copy
    # cost no wait; each execution's lease counts from its own start, after its wait
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [1.0] * 7
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): WALL + second
        for second, index in enumerate(STARTING)
    }
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "Rejected": 1}


def test_duplicates_settled_from_the_lookup_are_not_paced(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN records 0 and 1 carry images already DONE
    time = FakeTime()
    classifier = paced_classifier(cloud, metrics, time, rate="10")
    event = load_event("classifier_sqs_batch.json")
    cloud.put_result(url_of(event, 0), "DONE")
    cloud.put_result(url_of(event, 1), "DONE")

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN only the 6 starts are paced (5 waits): the duplicates took no slot
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [1.0] * 5
    assert len(cloud.executions()) == 6
    assert counted(metrics) == {"ExecutionStarted": 6, "Duplicate": 3, "Rejected": 1}


def test_a_start_that_finds_its_execution_running_gives_its_slot_back(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN record 0's execution already runs (a redelivery)
    time = FakeTime()
    classifier = paced_classifier(cloud, metrics, time, rate="10")
    event = load_event("classifier_sqs_batch.json")
    cloud.stepfunctions.start_execution(
        stateMachineArn=cloud.state_machine_arn,
        name=execution_name(url_of(event, 0), 1),
        input='{"requested_at": 0}',
    )

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN record 0 is in flight without using a slot: record 1 starts at once, and only
    # the 7 real starts are spaced (6 waits)
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [1.0] * 6
    assert started(cloud) == {execution_name(url_of(event, 0), 1): 0} | {
        execution_name(url_of(event, index), 1): WALL + second
        for second, index in enumerate(STARTING[1:])
    }
    assert counted(metrics) == {"ExecutionStarted": 7, "InFlight": 1, "Duplicate": 1, "Rejected": 1}


class ThrottledOnce:
    """moto's Step Functions, except that StartExecution of one name is throttled."""

    def __init__(self, real: SFNClient, name: str) -> None:
        self._real = real
        self._name = name

    def start_execution(self, **kwargs: Any) -> Any:
        if kwargs["name"] == self._name:
            raise client_error("ThrottlingException", "Rate exceeded", "StartExecution")
        return self._real.start_execution(**kwargs)


def test_a_failed_start_gives_its_slot_back(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN StartExecution is throttled for record 1's image
    time = FakeTime()
    event = load_event("classifier_sqs_batch.json")
    stepfunctions = ThrottledOnce(cloud.stepfunctions, execution_name(url_of(event, 1), 1))
    classifier = paced_classifier(cloud, metrics, time, rate="10", stepfunctions=stepfunctions)

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN record 1 waited for its slot and failed; record 3 takes that same slot (no second
    # wait), and the remaining five starts are spaced as usual
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert time.sleeps == [1.0] * 6
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): WALL + second
        for second, index in zip((0, 1, 2, 3, 4, 5, 6), (0, 3, 5, 6, 7, 8, 9), strict=True)
    }
    assert counted(metrics) == {
        "ExecutionStarted": 7,
        "TransientFailure": 1,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_records_whose_slot_comes_too_late_are_handed_back_unstarted(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN DetectLabelsRate 5/s (a start every 2 s here) and an invocation with 12 s left
    time = FakeTime()
    classifier = paced_classifier(cloud, metrics, time, rate="5")
    event = load_event("classifier_sqs_batch.json")
    deadline = START + 12.0

    def remaining_ms() -> int:
        return int((deadline - time.now) * 1_000)

    # WHEN the batch is processed
    response = process(classifier, event, remaining_ms)

    # THEN starts at 0, 2, 4 and 6 s leave at least the margin (5 s) before the timeout;
    # the next (8 s) would not, so records 6 to 9 are handed back without a wait or a start
    assert START_MARGIN_SECONDS == 5.0
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": event["Records"][index]["messageId"]} for index in (6, 7, 8, 9)
        ]
    }
    assert time.sleeps == [2.0, 2.0, 2.0]
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): WALL + 2 * second
        for second, index in enumerate((0, 1, 3, 5))
    }
    assert counted(metrics) == {
        "ExecutionStarted": 4,
        "TransientFailure": 4,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_a_container_keeps_its_spacing_from_one_invocation_to_the_next(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN a container (1 start a second) that started the replay sample's image 0.25 s ago
    time = FakeTime()
    classifier = paced_classifier(cloud, metrics, time, rate="10")
    process(classifier, load_event("classifier_sqs_replay.json"))
    time.now += 0.25

    # WHEN its next invocation gets the batch sample
    process(classifier, load_event("classifier_sqs_batch.json"))

    # THEN its first start waits the 0.75 s left of the previous one's second
    assert time.sleeps == [0.75] + [1.0] * 7
    assert len(cloud.executions()) == 9


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"DETECT_LABELS_RATE": "0"}, id="rate-0"),
        pytest.param({"WORKFLOW_TYPE": "EXPRESS"}, id="express"),
    ],
)
def test_nothing_is_paced_without_a_rate_or_under_express(
    cloud: Cloud, metrics: Metrics, environment: dict[str, str]
) -> None:
    # GIVEN STANDARD with DetectLabelsRate 0, or EXPRESS (which bounds images in flight)
    time = FakeTime()
    classifier = paced_classifier(
        cloud,
        metrics,
        time,
        rate="10",
        environment={"WORKFLOW_DLQ_URL": cloud.cats_dlq_url} | environment,
    )

    # WHEN the container is made THEN it has no pacer
    assert classifier.pacer is None
