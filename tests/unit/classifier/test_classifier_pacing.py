"""STANDARD start limiting: the shared window limiter, and the classifier's limited start path.

The window counters live in moto's DynamoDB (the real conditional UpdateItem path). Time is a
fake wall clock that only ``sleep`` moves, so every wait is asserted exactly; the rates used
(2 and 4 a second) space starts by binary fractions, which floats add without rounding.
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
from classifier.pacing import RETRY_JITTER_SECONDS, WINDOW_TTL_SECONDS, Slot, StartLimiter
from classifier.settings import load_settings
from common.messages import PhotoMessage, execution_name
from tests.unit.classifier.classifier_testkit import (
    RESULTS_TABLE,
    Cloud,
    client_error,
    load_event,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_stepfunctions import SFNClient

# The wall clock at the start of every test: the beginning of an epoch second.
WALL = 1_732_700_000


class FakeTime:
    """A wall clock that moves only when something sleeps; every sleep and jitter draw is
    recorded. ``jitter`` answers ``drawn`` (the low end of the range unless a test sets it)."""

    def __init__(self) -> None:
        self.now = float(WALL)
        self.sleeps: list[float] = []
        self.draws: list[tuple[float, float]] = []
        self.drawn: float | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def jitter(self, low: float, high: float) -> float:
        self.draws.append((low, high))
        return low if self.drawn is None else self.drawn


def limiter(cloud: Cloud, time: FakeTime, rate: float) -> StartLimiter:
    return StartLimiter(
        rate,
        dynamodb=cloud.dynamodb,
        table=RESULTS_TABLE,
        clock=time.clock,
        sleep=time.sleep,
        jitter=time.jitter,
    )


def window(cloud: Cloud, second: int) -> dict[str, Any] | None:
    """The counter item of the window of epoch ``second``, as stored; None if absent."""
    got = cloud.dynamodb.get_item(
        TableName=RESULTS_TABLE,
        Key={"pk": {"S": f"START_RATE#{second}"}, "sk": {"S": "WINDOW"}},
        ConsistentRead=True,
    )
    return got.get("Item")


def starts_in(cloud: Cloud, second: int) -> int:
    item = window(cloud, second)
    return 0 if item is None else int(item["starts"]["N"])


def fill(cloud: Cloud, second: int, starts: int) -> None:
    """Other invocations took ``starts`` slots of the window of ``second``."""
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": f"START_RATE#{second}"},
            "sk": {"S": "WINDOW"},
            "starts": {"N": str(starts)},
        },
    )


# ------------------------------------------------------------------------ the limiter


def test_a_windows_starts_are_spread_over_its_second(cloud: Cloud) -> None:
    # GIVEN a limiter of 4 a second at the beginning of a second
    time = FakeTime()
    limit = limiter(cloud, time, 4.0)

    # WHEN it is asked for four slots in a row, without limit
    slots = [limit.acquire(None) for _ in range(4)]

    # THEN all four are in this window, the n-th a quarter second after the one before
    assert slots == [Slot(WALL)] * 4
    assert time.sleeps == [0.25, 0.25, 0.25]
    assert window(cloud, WALL) == {
        "pk": {"S": f"START_RATE#{WALL}"},
        "sk": {"S": "WINDOW"},
        "starts": {"N": "4"},
        "expires_at": {"N": str(WALL + WINDOW_TTL_SECONDS)},
    }


def test_a_full_window_sends_the_start_to_the_next_second_plus_jitter(cloud: Cloud) -> None:
    # GIVEN other invocations took both slots of this second (rate 2), and a jitter draw
    time = FakeTime()
    time.now += 0.25
    time.drawn = 0.03125
    fill(cloud, WALL, 2)
    limit = limiter(cloud, time, 2.0)

    # WHEN a slot is asked for
    slot = limit.acquire(None)

    # THEN it waits for the next window and the jitter, and takes that window's first slot
    assert slot == Slot(WALL + 1)
    assert time.sleeps == [0.75 + 0.03125]
    assert time.draws == [(0.0, RETRY_JITTER_SECONDS)]
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (2, 1)


def test_containers_share_the_windows(cloud: Cloud) -> None:
    # GIVEN two containers limited to 2 a second, on the same table and clock
    time = FakeTime()
    first, second = limiter(cloud, time, 2.0), limiter(cloud, time, 2.0)

    # WHEN they take a slot each, and then the first another
    taken = [first.acquire(None), second.acquire(None), first.acquire(None)]

    # THEN together they get two slots of this second, and the third start the next second's
    assert taken == [Slot(WALL), Slot(WALL), Slot(WALL + 1)]
    assert time.sleeps == [0.5, 0.5]
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (2, 1)


def test_a_fractional_rate_grants_its_whole_starts_per_window(cloud: Cloud) -> None:
    # GIVEN a limiter of 2.5 a second
    time = FakeTime()
    limit = limiter(cloud, time, 2.5)

    # WHEN it is asked for three slots
    taken = [limit.acquire(None) for _ in range(3)]

    # THEN two fit this second (spaced 1 / 2.5 s) and the third waits for the next one
    assert taken == [Slot(WALL), Slot(WALL), Slot(WALL + 1)]
    assert len(time.sleeps) == 2
    assert math.floor(time.now) == WALL + 1
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (2, 1)


def test_a_late_start_skips_the_slots_whose_time_has_passed(cloud: Cloud) -> None:
    # GIVEN one start in this second (rate 4), and a container that comes 0.75 s into it
    time = FakeTime()
    time.now += 0.75
    fill(cloud, WALL, 1)
    limit = limiter(cloud, time, 4.0)

    # WHEN it asks for two slots
    taken = [limit.acquire(None), limit.acquire(None)]

    # THEN the first is the slot due now (the 4th, at 0.75 s), the 2nd and 3rd, unused and
    # past, counted as used; so the second waits for the next second instead of bunching
    assert taken == [Slot(WALL), Slot(WALL + 1)]
    assert time.sleeps == [0.25]
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (4, 1)


def test_a_late_start_with_no_slot_due_left_waits_for_the_next_second(cloud: Cloud) -> None:
    # GIVEN a rate of 2.5 (2 slots a second, at 0 and 0.4 s) and a container that comes
    # 0.875 s into an unused second: the slot due then would be a 3rd, which there is not
    time = FakeTime()
    time.now += 0.875
    limit = limiter(cloud, time, 2.5)

    # WHEN it asks for a slot
    slot = limit.acquire(None)

    # THEN it gets none of this second: the one it took first (past) stays counted, and
    # the next second's first slot is its
    assert slot == Slot(WALL + 1)
    assert time.sleeps == [0.125]
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (1, 1)


def test_a_retry_past_the_budget_is_refused_without_waiting(cloud: Cloud) -> None:
    # GIVEN this second's slots are taken, and the caller can wait 0.5 s at 0.25 s into it
    time = FakeTime()
    time.now += 0.25
    fill(cloud, WALL, 2)
    limit = limiter(cloud, time, 2.0)

    # WHEN a slot is asked for
    slot = limit.acquire(0.5)

    # THEN none is given, nothing waited, and no window counts a start for it
    assert slot is None
    assert time.sleeps == []
    assert (starts_in(cloud, WALL), window(cloud, WALL + 1)) == (2, None)


def test_a_slot_spaced_past_the_budget_is_given_back(cloud: Cloud) -> None:
    # GIVEN one of this second's 4 slots is taken: the next starts 0.25 s into the window
    time = FakeTime()
    fill(cloud, WALL, 1)
    limit = limiter(cloud, time, 4.0)

    # WHEN a slot is asked for by a caller that can wait 0.125 s
    slot = limit.acquire(0.125)

    # THEN none is given, nothing waited, and the slot taken is counted back
    assert slot is None
    assert time.sleeps == []
    assert starts_in(cloud, WALL) == 1


def test_a_released_slot_is_given_to_the_next_start_while_its_window_lasts(
    cloud: Cloud,
) -> None:
    # GIVEN a container took both slots of this second (rate 2)
    time = FakeTime()
    limit = limiter(cloud, time, 2.0)
    limit.acquire(None)
    slot = limit.acquire(None)
    assert slot is not None

    # WHEN it gives the second back within the second, and asks again
    limit.release(slot)
    again = limit.acquire(None)

    # THEN that slot is in this window again, without waiting for the next
    assert again == Slot(WALL)
    assert time.sleeps == [0.5]
    assert starts_in(cloud, WALL) == 2


def test_a_slot_released_after_its_window_changes_nothing(cloud: Cloud) -> None:
    # GIVEN a slot taken in this second
    time = FakeTime()
    limit = limiter(cloud, time, 2.0)
    slot = limit.acquire(None)
    assert slot is not None

    # WHEN it is given back once the second has passed
    time.now += 1.0
    limit.release(slot)

    # THEN its window still counts it (it cannot be used any more)
    assert starts_in(cloud, WALL) == 1


@pytest.mark.parametrize("rate", [0.0, 0.5, -1.0, math.inf, math.nan])
def test_a_rate_below_one_start_a_second_is_refused(cloud: Cloud, rate: float) -> None:
    # GIVEN / WHEN a limiter is made with a rate that grants no whole start a second
    # THEN it is refused
    time = FakeTime()
    with pytest.raises(ValueError, match="the start rate must be a number of at least 1"):
        limiter(cloud, time, rate)


# ------------------------------------------------------------------------ the classifier


def limited_classifier(
    cloud: Cloud,
    metrics: Metrics,
    time: FakeTime,
    *,
    rate: str,
    stepfunctions: object | None = None,
    dynamodb: object | None = None,
    environment: dict[str, str] | None = None,
) -> Classifier:
    """A STANDARD classifier limited to ``rate`` starts a second, on the fake clock."""
    return Classifier(
        settings=load_settings(
            cloud.environment() | {"DETECT_LABELS_RATE": rate} | (environment or {})
        ),
        sqs=cloud.sqs,
        stepfunctions=cast("SFNClient", stepfunctions or cloud.stepfunctions),
        dynamodb=cast("DynamoDBClient", dynamodb or cloud.dynamodb),
        metrics=metrics,
        clock=time.clock,
        sleep=time.sleep,
        start_jitter=time.jitter,
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


def test_a_batch_of_new_images_starts_at_the_rate(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN DetectLabelsRate 4/s, no other invocation starting anything
    time = FakeTime()
    classifier = limited_classifier(cloud, metrics, time, rate="4")
    event = load_event("classifier_sqs_batch.json")

    # WHEN the batch sample is processed
    response = process(classifier, event)

    # THEN its 8 new images start a quarter second apart, 4 in each of two windows; the
    # rejected body and the copy take no slot; each lease counts from its own start
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [0.25] * 7
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): WALL + position // 4
        for position, index in enumerate(STARTING)
    }
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (4, 4)
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "Rejected": 1}


def test_duplicates_settled_from_the_lookup_take_no_slot(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN records 0 and 1 carry images already DONE
    time = FakeTime()
    classifier = limited_classifier(cloud, metrics, time, rate="4")
    event = load_event("classifier_sqs_batch.json")
    cloud.put_result(url_of(event, 0), "DONE")
    cloud.put_result(url_of(event, 1), "DONE")

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN only the 6 starts take slots (4 + 2), 5 waits apart
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [0.25] * 5
    assert len(cloud.executions()) == 6
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (4, 2)
    assert counted(metrics) == {"ExecutionStarted": 6, "Duplicate": 3, "Rejected": 1}


def test_a_start_that_finds_its_execution_running_gives_its_slot_back(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN record 0's execution already runs (a redelivery)
    time = FakeTime()
    classifier = limited_classifier(cloud, metrics, time, rate="4")
    event = load_event("classifier_sqs_batch.json")
    cloud.stepfunctions.start_execution(
        stateMachineArn=cloud.state_machine_arn,
        name=execution_name(url_of(event, 0), 1),
        input='{"requested_at": 0}',
    )

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN record 0 is in flight and its slot went back: record 1 starts at once, and the 7
    # real starts count 4 + 3 in the windows
    assert response == {"batchItemFailures": []}
    assert time.sleeps == [0.25] * 6
    assert started(cloud) == {execution_name(url_of(event, 0), 1): 0} | {
        execution_name(url_of(event, index), 1): WALL + position // 4
        for position, index in enumerate(STARTING[1:])
    }
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (4, 3)
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
    classifier = limited_classifier(cloud, metrics, time, rate="4", stepfunctions=stepfunctions)

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN record 1 waited for its slot and failed; record 3 takes that same slot (no second
    # wait), and the 7 starts count 4 + 3 in the windows
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert time.sleeps == [0.25] * 6
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): WALL + position // 4
        for position, index in enumerate((0, 3, 5, 6, 7, 8, 9))
    }
    assert (starts_in(cloud, WALL), starts_in(cloud, WALL + 1)) == (4, 3)
    assert counted(metrics) == {
        "ExecutionStarted": 7,
        "TransientFailure": 1,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_records_whose_slot_comes_too_late_are_handed_back_unstarted(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN DetectLabelsRate 2/s, other invocations have taken the next 3 seconds' slots,
    # and this invocation has 10 s left
    time = FakeTime()
    classifier = limited_classifier(cloud, metrics, time, rate="2")
    event = load_event("classifier_sqs_batch.json")
    for second in range(3):
        fill(cloud, WALL + second, 2)
    deadline = WALL + 10.0

    def remaining_ms() -> int:
        return int((deadline - time.now) * 1_000)

    # WHEN the batch is processed
    response = process(classifier, event, remaining_ms)

    # THEN record 0 waits out the 3 full windows; records 1, 3, 5 and 6 start while their
    # slots leave the margin (5 s) before the timeout; from record 7 on, the next slot
    # (5.5 s in) would not, so records 7 to 9 are handed back unstarted, their slots given back
    assert START_MARGIN_SECONDS == 5.0
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": event["Records"][index]["messageId"]} for index in (7, 8, 9)
        ]
    }
    assert time.sleeps == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    assert started(cloud) == {
        execution_name(url_of(event, index), 1): at
        for index, at in ((0, WALL + 3), (1, WALL + 3), (3, WALL + 4), (5, WALL + 4), (6, WALL + 5))
    }
    assert [starts_in(cloud, WALL + second) for second in range(7)] == [2, 2, 2, 2, 2, 1, 0]
    assert counted(metrics) == {
        "ExecutionStarted": 5,
        "TransientFailure": 3,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_two_containers_share_the_rate(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN a container (DetectLabelsRate 4/s) started the replay sample's image this second
    time = FakeTime()
    process(
        limited_classifier(cloud, metrics, time, rate="4"),
        load_event("classifier_sqs_replay.json"),
    )

    # WHEN another container gets the batch sample in the same second
    process(
        limited_classifier(cloud, metrics, time, rate="4"), load_event("classifier_sqs_batch.json")
    )

    # THEN it takes the 3 slots left in this second, then 4 and 1 of the next two
    assert time.sleeps == [0.25] * 8
    assert len(cloud.executions()) == 9
    assert [starts_in(cloud, WALL + second) for second in range(3)] == [4, 4, 1]


class FailingWindows:
    """moto's DynamoDB, except that updating a window counter is throttled."""

    def __init__(self, real: DynamoDBClient) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def update_item(self, **kwargs: Any) -> Any:
        if kwargs["Key"]["pk"]["S"].startswith("START_RATE#"):
            raise client_error(
                "ProvisionedThroughputExceededException", "Rate exceeded", "UpdateItem"
            )
        return self._real.update_item(**kwargs)


def test_a_window_that_cannot_be_counted_leaves_the_records_queued(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN DynamoDB throttles the window counter's updates
    time = FakeTime()
    classifier = limited_classifier(
        cloud, metrics, time, rate="4", dynamodb=FailingWindows(cloud.dynamodb)
    )
    event = load_event("classifier_sqs_batch.json")

    # WHEN the batch is processed
    response = process(classifier, event)

    # THEN no image starts unlimited: each new one is handed back as a transient failure
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": event["Records"][index]["messageId"]} for index in STARTING
        ]
    }
    assert cloud.executions() == {}
    assert counted(metrics) == {"TransientFailure": 8, "Duplicate": 1, "Rejected": 1}


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"DETECT_LABELS_RATE": "0"}, id="rate-0"),
        pytest.param({"WORKFLOW_TYPE": "EXPRESS"}, id="express"),
    ],
)
def test_nothing_is_limited_without_a_rate_or_under_express(
    cloud: Cloud, metrics: Metrics, environment: dict[str, str]
) -> None:
    # GIVEN STANDARD with DetectLabelsRate 0, or EXPRESS (which bounds images in flight)
    time = FakeTime()
    classifier = limited_classifier(
        cloud,
        metrics,
        time,
        rate="4",
        environment={"WORKFLOW_DLQ_URL": cloud.cats_dlq_url} | environment,
    )

    # WHEN the container is made THEN it has no limiter
    assert classifier.limiter is None
