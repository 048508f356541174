"""ClassifierFunction with WORKFLOW_TYPE=EXPRESS: one synchronous execution per new image.

moto's in-process Step Functions has no StartSyncExecution, so ``SyncStepFunctions`` plays
the service at the edge: it claims the URL as the workflow's first state would (a conditional
write on moto's DynamoDB) and answers with the status a test chooses. Everything else (the
batch pre-pass, the claim, the markers, the dead-letter queue) is the real code on moto.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError, ReadTimeoutError

from classifier.backoff import Jitter
from classifier.express import ExpressRetry
from classifier.logic import Classifier
from classifier.lookup import START_FAILED_ERROR
from classifier.models import RouteQueueRecord
from classifier.settings import AWS_CONFIG, load_settings
from common.messages import express_execution_name, reservation_id
from tests.unit.classifier.classifier_testkit import (
    CATS_QUEUE,
    CLAIM_LEASE_SECONDS,
    RESULTS_TABLE,
    Cloud,
    MarkSentRefused,
    client_error,
    load_event,
    no_sleep,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

NOW = 1_732_700_000
EXPRESS_ARN_PREFIX = "arn:aws:states:us-east-1:123456789012:express:ClassifyImage:"
DUPLICATE_OUTPUT = '{"status":"DUPLICATE"}'
_deserializer = TypeDeserializer()


class SyncStepFunctions:
    """StartSyncExecution at the edge: claims the URL as the Claim Image state does (the same
    conditional write on moto's DynamoDB, ``supersedes`` included), then answers ``answer(n)``
    for the n-th execution (``status``, and ``error``/``cause`` for a failure), or raises
    ``refuse``. A claim refused by its condition ends the execution DUPLICATE, as the
    workflow's Duplicate state does."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        answer: Callable[[int], dict[str, str]],
        refuse: Exception | None = None,
    ) -> None:
        self._dynamodb = dynamodb
        self._answer = answer
        self._refuse = refuse
        self.started: list[dict[str, Any]] = []

    def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
        if self._refuse is not None:
            raise self._refuse
        self.started.append(kwargs)
        arn = f"{EXPRESS_ARN_PREFIX}{kwargs['name']}:run-{len(self.started)}"
        request = json.loads(kwargs["input"])
        try:
            self._dynamodb.update_item(
                TableName=RESULTS_TABLE,
                Key={"pk": {"S": request["message"]["url"]}, "sk": {"S": "RESULT"}},
                UpdateExpression=(
                    "SET #status = :in_progress, #execution = :me, "
                    "lease_expires_at = :lease_expires_at, open_claim = :open, message = :message"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #status = :failed OR "
                    "(#status = :in_progress AND lease_expires_at < :requested_at) OR "
                    "#execution = :me OR #execution = :supersedes"
                ),
                ExpressionAttributeNames={"#status": "status", "#execution": "execution"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": "IN_PROGRESS"},
                    ":failed": {"S": "FAILED"},
                    ":open": {"S": "OPEN"},
                    ":me": {"S": arn},
                    ":supersedes": {"S": request["supersedes"]},
                    ":lease_expires_at": {"N": str(request["lease_expires_at"])},
                    ":requested_at": {"N": str(request["requested_at"])},
                    # As the Claim Image state writes it (States.JsonToString).
                    ":message": {"S": json.dumps(request["message"], separators=(",", ":"))},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return {"executionArn": arn, "status": "SUCCEEDED", "output": DUPLICATE_OUTPUT}
        return {"executionArn": arn, **self._answer(len(self.started))}


class FailingSQS:
    """SendMessage refused ``failures`` times, then moto's SQS."""

    def __init__(self, real: SQSClient, failures: int) -> None:
        self._real = real
        self._failures = failures

    def send_message(self, **kwargs: Any) -> Any:
        if self._failures > 0:
            self._failures -= 1
            raise client_error("InternalError", "try again", "SendMessage", status=500)
        return self._real.send_message(**kwargs)


def succeeded(_: int) -> dict[str, str]:
    return {"status": "SUCCEEDED", "output": "{}"}


def failed_with(error: str, cause: str = "why") -> Callable[[int], dict[str, str]]:
    return lambda _: {"status": "FAILED", "error": error, "cause": cause}


def express_classifier(
    cloud: Cloud,
    metrics: Metrics,
    stepfunctions: SyncStepFunctions,
    *,
    sqs: object | None = None,
    dynamodb: object | None = None,
    jitter: Jitter | None = None,
    workflow_dlq_url: str,
) -> Classifier:
    environment = cloud.environment() | {
        "WORKFLOW_TYPE": "EXPRESS",
        "WORKFLOW_DLQ_URL": workflow_dlq_url,
    }
    return Classifier(
        settings=load_settings(environment),
        sqs=cast("SQSClient", sqs or cloud.sqs),
        stepfunctions=cast("SFNClient", stepfunctions),
        dynamodb=cast("DynamoDBClient", dynamodb or cloud.dynamodb),
        metrics=metrics,
        clock=lambda: NOW + 0.75,
        sleep=no_sleep,
        **({} if jitter is None else {"jitter": jitter}),
    )


def process(
    classifier: Classifier, event: dict[str, Any], remaining_ms: Callable[[], int] | None = None
) -> PartialItemFailureResponse:
    batch = classifier.open_batch(event["Records"], remaining_ms=remaining_ms)
    processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)
    return process_partial_response(
        event=event, record_handler=batch.handle_record, processor=processor
    )


def counted(metrics: Metrics) -> dict[str, float]:
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


def result_of(cloud: Cloud, url: str) -> dict[str, Any]:
    item = cloud.dynamodb.get_item(
        TableName=RESULTS_TABLE, Key={"pk": {"S": url}, "sk": {"S": "RESULT"}}
    )["Item"]
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


@pytest.fixture
def workflow_dlq(cloud: Cloud) -> str:
    url: str = cloud.sqs.create_queue(QueueName="tweetlens-dev-WorkflowDeadLetterQueue-W")[
        "QueueUrl"
    ]
    return url


@pytest.fixture
def event() -> dict[str, Any]:
    return load_event("classifier_sqs_replay.json")


def _url(event: dict[str, Any]) -> str:
    return str(json.loads(event["Records"][0]["body"])["url"])


def _arn(event: dict[str, Any], run: int, record: int = 0) -> str:
    """The ARN SyncStepFunctions gives the ``run``-th execution, started for ``record``."""
    name = express_execution_name(_url(event), event["Records"][record]["messageId"])
    return f"{EXPRESS_ARN_PREFIX}{name}:run-{run}"


def _letters(cloud: Cloud, queue_url: str) -> list[dict[str, Any]]:
    return [json.loads(letter["body"]) for letter in cloud.dead_letters(queue_url)]


def test_succeeded_execution_classifies_the_image(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a new image whose execution succeeds
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN its record is processed
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN one synchronous execution ran with the classifier's request, named by the URL and
    # the message, taking over the reservation the classifier wrote for the message
    assert response == {"batchItemFailures": []}
    (started,) = sfn.started
    message_id = event["Records"][0]["messageId"]
    assert started["name"] == express_execution_name(_url(event), message_id)
    assert json.loads(started["input"]) == {
        "message": json.loads(event["Records"][0]["body"]),
        "requested_at": NOW,
        "lease_expires_at": NOW + CLAIM_LEASE_SECONDS,
        "source_queue_arn": event["Records"][0]["eventSourceARN"],
        "supersedes": reservation_id(message_id),
    }
    assert (
        result_of(cloud, _url(event))["execution"] == f"{EXPRESS_ARN_PREFIX}{started['name']}:run-1"
    )
    assert counted(metrics) == {"Classified": 1}
    assert _letters(cloud, workflow_dlq) == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            failed_with("ImageNotFound", "404 from the host"),
            ("FAILED", "ImageNotFound", "404 from the host"),
        ),
        (lambda _: {"status": "TIMED_OUT"}, ("TIMED_OUT", "States.Timeout", "")),
        (lambda _: {"status": "FAILED"}, ("FAILED", "ExecutionFailed", "")),
    ],
    ids=["failed", "timed-out", "failed-without-error"],
)
def test_permanent_failure_is_dead_lettered_once_and_closes_the_claim(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    answer: Callable[[int], dict[str, str]],
    expected: tuple[str, str, str],
) -> None:
    event = load_event("classifier_sqs_replay.json")
    status, error, cause = expected
    # GIVEN a new image whose execution ends without success, for good
    sfn = SyncStepFunctions(cloud.dynamodb, answer)

    # WHEN its record is processed
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN the record is done with, and one letter in the closer's shape says why
    assert response == {"batchItemFailures": []}
    arn = _arn(event, 1)
    assert _letters(cloud, workflow_dlq) == [
        {
            "message": json.loads(event["Records"][0]["body"]),
            "input": None,
            "error": {"Error": error, "Cause": cause},
            "execution": arn,
            "status": status,
            "failed_state": None,
            "detected_by": "sync-result",
        }
    ]
    # AND the claim is closed: FAILED, out of the sweep's index
    result = result_of(cloud, _url(event))
    assert (result["status"], result["error"], result["execution"]) == ("FAILED", error, arn)
    assert "open_claim" not in result
    assert counted(metrics) == {"ExecutionDeadLettered": 1}


def test_redelivered_dead_lettered_message_runs_no_execution(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a message whose execution failed for good and was dead-lettered
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageNotFound"))
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    process(classifier, event)

    # WHEN SQS delivers the same message again (a duplicate, or a batch that failed whole)
    response = process(classifier, event)

    # THEN no second execution runs and no second letter is sent
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert len(_letters(cloud, workflow_dlq)) == 1
    assert counted(metrics) == {"ExecutionDeadLettered": 2}


@pytest.mark.parametrize(
    "error",
    [
        "Rekognition.ThrottlingException",
        "Rekognition.InternalServerErrorException",
        "Lambda.TooManyRequestsException",
        "DynamoDB.ThrottlingException",
        "ResultStoreBusy",
    ],
)
def test_transient_execution_failure_is_a_batch_item_failure(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any], error: str
) -> None:
    # GIVEN an execution that fails with an error the workflow retried and gave up on
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with(error))

    # WHEN the record is processed
    # THEN it is left on its queue (the only record: Powertools raises for the whole batch)
    with pytest.raises(BatchProcessingError) as raised:
        process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert failure.transient is True
    # AND no letter is sent, and the claim is closed so the redelivery can take it at once
    assert _letters(cloud, workflow_dlq) == []
    assert result_of(cloud, _url(event))["status"] == "FAILED"
    assert counted(metrics) == {"TransientFailure": 1}


def test_transient_failure_then_redelivery_classifies(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution throttled for good, then one that succeeds
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: (
            {"status": "SUCCEEDED", "output": "{}"}
            if n > 1
            else {"status": "FAILED", "error": "Rekognition.ThrottlingException", "cause": "slow"}
        ),
    )
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    with pytest.raises(BatchProcessingError):
        process(classifier, event)

    # WHEN SQS delivers the message again, inside the first claim's lease
    response = process(classifier, event)

    # THEN the second execution runs and classifies it; nothing was dead-lettered
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    assert _letters(cloud, workflow_dlq) == []
    assert counted(metrics) == {"TransientFailure": 1, "Classified": 1}


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (
            client_error("ThrottlingException", "Rate exceeded", "StartSyncExecution"),
            (True, "TransientFailure"),
        ),
        (
            client_error("ServiceUnavailable", "later", "StartSyncExecution", 503),
            (True, "TransientFailure"),
        ),
        (
            client_error("AccessDeniedException", "no", "StartSyncExecution"),
            (False, "ConfigurationError"),
        ),
        (
            client_error("StateMachineTypeNotSupported", "STANDARD", "StartSyncExecution"),
            (False, "ConfigurationError"),
        ),
    ],
    ids=["throttled", "unavailable", "access-denied", "standard-machine"],
)
def test_refused_start_is_a_batch_item_failure(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    refusal: Exception,
    expected: tuple[bool, str],
) -> None:
    event = load_event("classifier_sqs_replay.json")
    transient, metric = expected
    # GIVEN StartSyncExecution refuses to start
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded, refuse=refusal)

    # WHEN the record is processed THEN it stays on its queue, told transient or not
    with pytest.raises(BatchProcessingError) as raised:
        process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert failure.transient is transient
    assert _letters(cloud, workflow_dlq) == []
    assert counted(metrics) == {metric: 1}


def test_done_image_runs_no_execution(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the image is already DONE
    cloud.put_result(_url(event), "DONE", f"{EXPRESS_ARN_PREFIX}x:run-0")
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN a duplicate message for it is processed THEN no execution runs
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"Duplicate": 1}


def test_live_claim_makes_the_duplicate_in_flight_without_an_execution(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN another post's message for the image is running its execution (a live lease)
    owner = f"{EXPRESS_ARN_PREFIX}x:run-0"
    other_post = json.loads(event["Records"][0]["body"]) | {"post_id": "1"}
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "IN_PROGRESS"},
            "execution": {"S": owner},
            "lease_expires_at": {"N": str(NOW + 100)},
            "message": {"S": json.dumps(other_post)},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the duplicate is processed THEN it is in flight: no execution, deleted from its queue
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"InFlight": 1}


def test_expired_claim_is_superseded(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a claim whose lease expired (its classifier died while waiting)
    owner = f"{EXPRESS_ARN_PREFIX}x:run-0"
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "IN_PROGRESS"},
            "execution": {"S": owner},
            "lease_expires_at": {"N": str(NOW - 1)},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the message comes back THEN its reservation takes the expired claim over and a new
    # execution runs, taking the reservation over in turn
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )
    assert response == {"batchItemFailures": []}
    (started,) = sfn.started
    assert json.loads(started["input"])["supersedes"] == reservation_id(
        event["Records"][0]["messageId"]
    )
    assert result_of(cloud, _url(event))["execution"] == _arn(event, 1)
    assert counted(metrics) == {"Classified": 1}


def test_too_little_time_left_defers_the_record(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an invocation with less time left than an execution may take (the lease)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(
            express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq),
            event,
            remaining_ms=lambda: CLAIM_LEASE_SECONDS * 1_000 - 1,
        )

    # THEN no execution starts and the record is left for SQS to deliver again
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert failure.transient is True
    assert sfn.started == []
    assert counted(metrics) == {"TransientFailure": 1}


def test_refused_letter_is_retried_and_sent_once(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that fails for good, and SQS refusing the first letter
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageNotFound"))
    sqs = FailingSQS(cloud.sqs, failures=1)
    classifier = express_classifier(cloud, metrics, sfn, sqs=sqs, workflow_dlq_url=workflow_dlq)

    # WHEN the record is processed, then delivered again
    with pytest.raises(BatchProcessingError):
        process(classifier, event)
    response = process(classifier, event)

    # THEN the redelivery sent the one letter from the closed claim without running the image
    # again (a second run could call DetectLabels twice), naming the execution that failed
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["execution"], letter["status"], letter["error"]) == (
        f"{EXPRESS_ARN_PREFIX}{sfn.started[0]['name']}:run-1",
        "FAILED",
        {"Error": "ImageNotFound", "Cause": "why"},
    )
    assert counted(metrics) == {"TransientFailure": 1, "ExecutionDeadLettered": 1}


def test_letter_whose_sent_mark_is_refused_is_sent_once_and_the_record_done(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that fails for good, and DynamoDB refusing the write that marks its
    # letter SENT (after SendMessage to the workflow DLQ succeeded)
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageNotFound"))
    dynamodb = MarkSentRefused(cloud.dynamodb)
    classifier = express_classifier(
        cloud, metrics, sfn, dynamodb=dynamodb, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    response = process(classifier, event)

    # THEN the record is done, not retried (a retry would send the letter a second time), and
    # the one letter names the execution that failed
    assert dynamodb.refused == 1
    assert response == {"batchItemFailures": []}
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["execution"], letter["error"]) == (
        f"{EXPRESS_ARN_PREFIX}{sfn.started[0]['name']}:run-1",
        {"Error": "ImageNotFound", "Cause": "why"},
    )
    assert counted(metrics) == {"ExecutionDeadLettered": 1}


def test_refused_letter_of_a_timed_out_execution_is_sent_as_timed_out(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that times out, and SQS refusing the first letter
    sfn = SyncStepFunctions(cloud.dynamodb, lambda _: {"status": "TIMED_OUT"})
    sqs = FailingSQS(cloud.sqs, failures=1)
    classifier = express_classifier(cloud, metrics, sfn, sqs=sqs, workflow_dlq_url=workflow_dlq)

    # WHEN the record is processed, then delivered again
    with pytest.raises(BatchProcessingError):
        process(classifier, event)
    process(classifier, event)

    # THEN the one letter says TIMED_OUT, as the first delivery's would have
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["status"], letter["error"]["Error"], len(sfn.started)) == (
        "TIMED_OUT",
        "States.Timeout",
        1,
    )


def test_refused_letter_of_a_task_timeout_is_sent_as_failed(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that FAILED with a task's States.Timeout (not the execution's own
    # timeout), and SQS refusing the first letter
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("States.Timeout", "task timed out"))
    sqs = FailingSQS(cloud.sqs, failures=1)
    classifier = express_classifier(cloud, metrics, sfn, sqs=sqs, workflow_dlq_url=workflow_dlq)

    # WHEN the record is processed, then delivered again
    with pytest.raises(BatchProcessingError):
        process(classifier, event)
    process(classifier, event)

    # THEN the one letter says FAILED, as recorded on the claim, not TIMED_OUT
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["status"], letter["error"]["Error"], len(sfn.started)) == (
        "FAILED",
        "States.Timeout",
        1,
    )
    result = result_of(cloud, _url(event))
    assert (result["ended_status"], result["ended_execution"]) == ("FAILED", _arn(event, 1))


def test_refused_letter_of_an_execution_failed_before_its_claim_names_the_execution(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that fails before its Claim Image state (the reservation is closed
    # for it), and SQS refusing the first letter
    arn = f"{EXPRESS_ARN_PREFIX}failed-before-claim:run-1"

    class FailsBeforeClaim:
        def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
            return {"executionArn": arn, "status": "FAILED", "error": "Bug", "cause": "why"}

    sqs = FailingSQS(cloud.sqs, failures=1)
    classifier = express_classifier(
        cloud,
        metrics,
        cast("SyncStepFunctions", FailsBeforeClaim()),
        sqs=sqs,
        workflow_dlq_url=workflow_dlq,
    )

    # WHEN the record is processed, then delivered again
    with pytest.raises(BatchProcessingError):
        process(classifier, event)
    process(classifier, event)

    # THEN the one letter names the execution that failed, not the reservation it closed
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["execution"], letter["status"], letter["error"]) == (
        arn,
        "FAILED",
        {"Error": "Bug", "Cause": "why"},
    )
    assert result_of(cloud, _url(event))["execution"] == reservation_id(
        event["Records"][0]["messageId"]
    )


def test_claim_closed_without_its_end_recorded_is_lettered_by_its_error(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN this message's execution claim closed States.Timeout by a classifier that recorded
    # no end status (written before the status was kept)
    mine = _arn(event, 0)
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "FAILED"},
            "execution": {"S": mine},
            "error": {"S": "States.Timeout"},
            "message": {"S": event["Records"][0]["body"]},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)

    # WHEN its redelivery is processed
    process(classifier, event)

    # THEN its letter falls back to the error's rule: the execution's own timeout
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["execution"], letter["status"], sfn.started) == (mine, "TIMED_OUT", [])


def test_message_whose_claim_the_sweep_closed_runs_again(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN this message's execution claim, closed by the closer's sweep (LeaseExpired: the
    # classifier waiting for it died, so where the execution stopped is unknown, and the
    # sweep sent that letter itself)
    record = event["Records"][0]
    name = express_execution_name(_url(event), record["messageId"])
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "FAILED"},
            "execution": {"S": f"{EXPRESS_ARN_PREFIX}{name}:run-0"},
            "error": {"S": "LeaseExpired"},
            "cause": {"S": "the claim's lease expired"},
            "message": {"S": record["body"]},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the message is delivered again
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN it runs the image again, and sends no second letter
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert _letters(cloud, workflow_dlq) == []
    assert counted(metrics) == {"Classified": 1}


def test_message_moved_to_its_route_dlq_after_its_letter_was_refused_runs_when_redriven(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a message whose execution fails for good on each of its 5 receives while SQS
    # refuses every workflow letter: the redrive policy moves it to its route's DLQ, its
    # image's claim closed FAILED and no letter sent
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageNotFound"))
    sqs = FailingSQS(cloud.sqs, failures=5)
    classifier = express_classifier(cloud, metrics, sfn, sqs=sqs, workflow_dlq_url=workflow_dlq)
    for _ in range(5):
        with pytest.raises(BatchProcessingError):
            process(classifier, event)
    assert _letters(cloud, workflow_dlq) == []
    assert result_of(cloud, _url(event))["status"] == "FAILED"

    # WHEN `tweetlens dlq redrive` sends it back to its route queue (a new SQS message, one
    # attempt higher) and SQS accepts letters again
    attempt = json.loads(event["Records"][0]["body"])["attempt"]
    response = process(classifier, {"Records": [_copy(event, SECOND, attempt=attempt + 1)]})

    # THEN it runs again and ends with its one letter, rather than be deleted as a repeat of a
    # failure whose letter never got out (the 4 redeliveries before only retried the letter)
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["error"]["Error"], letter["message"]["attempt"]) == (
        "ImageNotFound",
        attempt + 1,
    )
    assert counted(metrics) == {"TransientFailure": 5, "ExecutionDeadLettered": 1}


def test_batch_mixes_outcomes_and_fails_only_the_transient_record(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str
) -> None:
    # GIVEN a batch of new images where the third execution is throttled for good
    event = load_event("classifier_sqs_batch.json")
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: (
            {"status": "FAILED", "error": "Rekognition.ThrottlingException"}
            if n == 3
            else {"status": "SUCCEEDED", "output": "{}"}
        ),
    )

    # WHEN the batch is processed
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN only the record whose execution was throttled is left on the queue
    third = json.loads(sfn.started[2]["input"])["message"]["url"]
    failing = [r["messageId"] for r in event["Records"] if f'"url":"{third}"' in r["body"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": failing[0]}]}
    assert counted(metrics)["TransientFailure"] == 1
    assert counted(metrics)["Classified"] == len(sfn.started) - 1


def test_execution_that_found_a_duplicate_is_a_duplicate(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution whose claim found the image taken (it ends in the Duplicate state)
    sfn = SyncStepFunctions(
        cloud.dynamodb, lambda _: {"status": "SUCCEEDED", "output": '{"status":"DUPLICATE"}'}
    )

    # WHEN the record is processed THEN it is counted a duplicate, not a classification
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )
    assert response == {"batchItemFailures": []}
    assert counted(metrics) == {"Duplicate": 1}


@pytest.mark.parametrize("status", ["RUNNING", "PENDING_REDRIVE", "succeeded", ""])
def test_answer_without_an_end_status_is_a_named_failure(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, status: str
) -> None:
    # GIVEN StartSyncExecution answers a status that is no end of an execution
    event = load_event("classifier_sqs_replay.json")
    sfn = SyncStepFunctions(cloud.dynamodb, lambda _: {"status": status})

    # WHEN the record is processed THEN it stays on its queue with an error naming the status
    with pytest.raises(BatchProcessingError) as raised:
        process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert (str(failure), failure.transient) == (
        f"StartSyncExecution answered status {status!r}, not an end",
        False,
    )
    assert _letters(cloud, workflow_dlq) == []
    assert counted(metrics) == {"ConfigurationError": 1}


def test_same_message_running_elsewhere_is_left_on_its_queue(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN this very message is running in another delivery (SQS delivered it twice at once)
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "IN_PROGRESS"},
            "execution": {"S": f"{EXPRESS_ARN_PREFIX}x:run-0"},
            "lease_expires_at": {"N": str(NOW + 100)},
            "message": {"S": event["Records"][0]["body"]},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the second copy is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)

    # THEN it runs nothing and stays queued: deleting it would lose the message if the other
    # delivery fails transiently and counts on SQS to deliver it again
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert (str(failure), failure.transient) == (
        "the same message is running in another delivery",
        True,
    )
    assert sfn.started == []
    assert counted(metrics) == {"TransientFailure": 1}


# ------------------------------------------------------------------ duplicates, no execution
def _copy(event: dict[str, Any], message_id: str, **changes: Any) -> dict[str, Any]:
    """Another SQS message of the event's first post's image (another post, or the same
    content sent twice), as its own record."""
    record = dict(event["Records"][0])
    body = json.loads(record["body"]) | changes
    return record | {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": json.dumps(body, separators=(",", ":")),
    }


def _outcomes(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    """The record_outcome of every record processed, by message id, from the log records."""
    records = [
        cast("dict[str, Any]", entry.record_outcome)
        for entry in caplog.records
        if hasattr(entry, "record_outcome")
    ]
    return {record["message_id"]: record for record in records}


class CountingDynamoDB:
    """moto's DynamoDB, counting the write requests made through it."""

    def __init__(self, real: DynamoDBClient) -> None:
        self._real = real
        self.writes: list[str] = []

    def update_item(self, **kwargs: Any) -> Any:
        self.writes.append(kwargs["Key"]["pk"]["S"])
        return self._real.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


SECOND = "5e0c1a7b-0b1d-4f4e-9c3a-00000000d002"


@pytest.mark.parametrize(
    "first",
    [(succeeded, "Classified", 0), (failed_with("Lambda.ServiceException"), None, 1)],
    ids=["first-classified", "first-left-on-queue"],
)
def test_same_batch_copy_is_settled_from_the_first_without_a_request(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    caplog: pytest.LogCaptureFixture,
    first: tuple[Callable[[int], dict[str, str]], str | None, int],
) -> None:
    answer, first_outcome, failures = first
    event = load_event("classifier_sqs_replay.json")
    # GIVEN one batch with two posts of the same image
    batch = {"Records": [event["Records"][0], _copy(event, SECOND, post_id="1")]}
    sfn = SyncStepFunctions(cloud.dynamodb, answer)
    dynamodb = CountingDynamoDB(cloud.dynamodb)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    classifier.dynamodb = cast("DynamoDBClient", dynamodb)
    classifier.express = replace(classifier.express, dynamodb=cast("DynamoDBClient", dynamodb))
    caplog.clear()

    # WHEN the batch is processed
    response = process(classifier, batch)

    # THEN one execution ran, for the first; the copy cost no execution and no write of its
    # own (one reservation, plus the claim's closing when the first failed), and is a
    # duplicate of the first's execution whatever became of it
    first_id = event["Records"][0]["messageId"]
    assert len(sfn.started) == 1
    assert dynamodb.writes == [_url(event)] * (1 + failures)
    assert response == {"batchItemFailures": [{"itemIdentifier": first_id}] * failures}
    outcomes = _outcomes(caplog)
    assert outcomes[SECOND]["outcome"] == "Duplicate"
    assert outcomes[SECOND]["execution"] == (_arn(event, 1) if first_outcome else "")
    assert (first_id in outcomes) is (first_outcome is not None)


def test_reservation_lost_to_a_live_claim_runs_no_execution(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    event: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the batch's lookup found the image new, then another post's classifier reserved it
    # (the two were published at once and delivered to concurrent invocations)
    other = reservation_id(SECOND)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "IN_PROGRESS"},
            "execution": {"S": other},
            "lease_expires_at": {"N": str(NOW + 100)},
            "open_claim": {"S": "OPEN"},
            "message": {"S": _copy(event, SECOND, post_id="1")["body"]},
        },
    )
    caplog.clear()

    # WHEN this post's record is handled
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )

    # THEN its reservation is refused: no execution, in flight with the owner, deleted from its
    # queue, and the owner's reservation is untouched
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"InFlight": 1}
    assert _outcomes(caplog)[event["Records"][0]["messageId"]]["execution"] == other
    assert result_of(cloud, _url(event))["execution"] == other


def test_reservation_lost_to_a_done_result_is_a_duplicate(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the image became DONE after the batch's lookup
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    cloud.put_result(_url(event), "DONE", f"{EXPRESS_ARN_PREFIX}x:run-0")

    # WHEN its record is handled THEN the refused reservation makes it a duplicate, no execution
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"Duplicate": 1}


def test_reservation_of_this_same_message_leaves_it_on_its_queue(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN another delivery of this very message reserved the image after the lookup
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    mine = reservation_id(event["Records"][0]["messageId"])
    cloud.put_result(_url(event), "IN_PROGRESS", mine)
    cloud.dynamodb.update_item(
        TableName=RESULTS_TABLE,
        Key={"pk": {"S": _url(event)}, "sk": {"S": "RESULT"}},
        UpdateExpression="SET lease_expires_at = :lease",
        ExpressionAttributeValues={":lease": {"N": str(NOW + 100)}},
    )

    # WHEN this delivery is handled
    with pytest.raises(BatchProcessingError) as raised:
        process_partial_response(
            event=event,
            record_handler=batch.handle_record,
            processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
        )

    # THEN it neither retakes the reservation nor runs: it stays queued until that one settles
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert str(failure) == "the same message is running in another delivery"
    assert sfn.started == []
    assert result_of(cloud, _url(event))["execution"] == mine


def test_reservation_takes_over_a_failed_item(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the image's last execution failed (its claim FAILED)
    cloud.put_result(_url(event), "FAILED", f"{EXPRESS_ARN_PREFIX}x:run-0")
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN a message for it is processed
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN the reservation takes the item over and the execution takes the reservation over
    assert response == {"batchItemFailures": []}
    (started,) = sfn.started
    assert json.loads(started["input"])["supersedes"] == reservation_id(
        event["Records"][0]["messageId"]
    )
    result = result_of(cloud, _url(event))
    assert (result["status"], result["execution"]) == ("IN_PROGRESS", _arn(event, 1))
    assert counted(metrics) == {"Classified": 1}


# A URL whose execution failed for good stays failed (classifier.lookup): a later message for it
# is a duplicate of that failure, a replay of its letter runs it again.


def test_later_post_of_an_image_failed_for_good_is_a_duplicate(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    event: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN an image whose execution failed for good and was dead-lettered
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageNotFound", "404 from the host"))
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    process(classifier, event)
    caplog.clear()

    # WHEN another post of the same photo arrives after it
    later = {"Records": [_copy(event, SECOND, post_id="1")]}
    response = process(classifier, later)

    # THEN it runs no execution and sends no letter: it is a duplicate of the failed execution
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert len(_letters(cloud, workflow_dlq)) == 1
    assert counted(metrics) == {"ExecutionDeadLettered": 1, "Duplicate": 1}
    assert _outcomes(caplog)[SECOND]["execution"] == _arn(event, 1).rpartition(":")[2]
    # AND the claim still names the failed execution and its error
    result = result_of(cloud, _url(event))
    assert (result["status"], result["execution"], result["error"]) == (
        "FAILED",
        _arn(event, 1),
        "ImageNotFound",
    )


def test_replay_of_a_dead_letter_runs_the_image_again(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an image whose execution failed for good, and whose host then serves it
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: failed_with("ImageNotFound")(n) if n == 1 else succeeded(n),
    )
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    process(classifier, event)
    (letter,) = _letters(cloud, workflow_dlq)

    # WHEN its letter is sent back as `tweetlens dlq redrive` does (attempt + 1, a new message)
    replay = {
        "Records": [_copy(event, SECOND, attempt=letter["message"]["attempt"] + 1)],
    }
    response = process(classifier, replay)

    # THEN a second execution runs and classifies the image
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    assert counted(metrics) == {"ExecutionDeadLettered": 1, "Classified": 1}
    replayed = f"{EXPRESS_ARN_PREFIX}{express_execution_name(_url(event), SECOND)}:run-2"
    assert result_of(cloud, _url(event))["execution"] == replayed


def test_replay_behind_a_later_post_in_one_batch_runs_the_image_again(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an image whose execution failed for good, and whose host then serves it
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: failed_with("ImageNotFound")(n) if n == 1 else succeeded(n),
    )
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    process(classifier, event)
    (letter,) = _letters(cloud, workflow_dlq)

    # WHEN one batch holds a later post of the photo first and the letter's replay after it
    batch = {
        "Records": [
            _copy(event, "later-post", post_id="1"),
            _copy(event, SECOND, attempt=letter["message"]["attempt"] + 1),
        ]
    }
    response = process(classifier, batch)

    # THEN the later post is a duplicate of the failure, and the replay, which that outcome
    # does not cover, runs a second execution that classifies the image
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    assert counted(metrics) == {"ExecutionDeadLettered": 1, "Duplicate": 1, "Classified": 1}
    replayed = f"{EXPRESS_ARN_PREFIX}{express_execution_name(_url(event), SECOND)}:run-2"
    assert result_of(cloud, _url(event))["execution"] == replayed


def test_later_post_after_a_transient_failure_runs_the_image(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an image whose execution was throttled for good (its record left on its queue)
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: failed_with("Rekognition.ThrottlingException")(n) if n == 1 else succeeded(n),
    )
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    with pytest.raises(BatchProcessingError):
        process(classifier, event)

    # WHEN another post of the same photo arrives before the redelivery
    response = process(classifier, {"Records": [_copy(event, SECOND, post_id="1")]})

    # THEN it takes the image over at once and classifies it
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    assert _letters(cloud, workflow_dlq) == []
    assert counted(metrics) == {"TransientFailure": 1, "Classified": 1}


def test_later_post_after_an_image_host_error_runs_the_image(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an image whose host failed (ImageHostError after the workflow's retries, before
    # Detect Labels): the message is dead-lettered, not left on its queue
    sfn = SyncStepFunctions(
        cloud.dynamodb,
        lambda n: failed_with("ImageHostError", "503 from the host")(n) if n == 1 else succeeded(n),
    )
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    assert process(classifier, event) == {"batchItemFailures": []}

    # WHEN another post of the same photo arrives, and the host answers again
    response = process(classifier, {"Records": [_copy(event, SECOND, post_id="1")]})

    # THEN it takes the image over and classifies it; the failed message kept its one letter
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 2
    assert [letter["error"]["Error"] for letter in _letters(cloud, workflow_dlq)] == [
        "ImageHostError"
    ]
    assert counted(metrics) == {"ExecutionDeadLettered": 1, "Classified": 1}
    taken_over = f"{EXPRESS_ARN_PREFIX}{express_execution_name(_url(event), SECOND)}:run-2"
    assert result_of(cloud, _url(event))["execution"] == taken_over


def test_copy_of_the_message_failed_by_the_image_host_is_a_duplicate(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a message whose execution failed with ImageHostError and was dead-lettered
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("ImageHostError", "503 from the host"))
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    process(classifier, event)

    # WHEN a copy of that message (same post, photo and route; another SQS message) arrives
    response = process(classifier, {"Records": [_copy(event, SECOND)]})

    # THEN it runs nothing: the failed message's one letter stands for it
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert len(_letters(cloud, workflow_dlq)) == 1
    assert counted(metrics) == {"ExecutionDeadLettered": 1, "Duplicate": 1}


def _failed_since_the_lookup(cloud: Cloud, event: dict[str, Any], error: str) -> str:
    """Another post's execution failed with ``error`` and closed the image's claim; its ARN."""
    other = f"{EXPRESS_ARN_PREFIX}{express_execution_name(_url(event), SECOND)}:run-0"
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "FAILED"},
            "execution": {"S": other},
            "error": {"S": error},
            "message": {"S": _copy(event, SECOND, post_id="1")["body"]},
        },
    )
    return other


def test_reservation_refused_by_a_failure_for_good_since_the_lookup_is_a_duplicate(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the batch's lookup found the image new, then another post's execution failed for
    # good (the two were published at once and delivered to concurrent invocations)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    other = _failed_since_the_lookup(cloud, event, "ImageNotFound")

    # WHEN this post's record is handled
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )

    # THEN its reservation, written for an item it had not read, is refused, and the item it
    # finds makes the record a duplicate of that failure: no execution, the claim untouched
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"Duplicate": 1}
    assert result_of(cloud, _url(event))["execution"] == other


def test_reservation_refused_by_a_transient_failure_since_the_lookup_takes_it_over(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the batch's lookup found the image new, then another post's execution failed
    # transiently
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    _failed_since_the_lookup(cloud, event, "Rekognition.ThrottlingException")

    # WHEN this post's record is handled
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )

    # THEN the item it finds leaves the image open: reserved as read, it runs and classifies
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert counted(metrics) == {"Classified": 1}
    assert result_of(cloud, _url(event))["execution"] == _arn(event, 1)


def test_reservation_refused_by_this_message_failed_for_good_elsewhere_sends_its_letter(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the batch's lookup found the image new, then another delivery of this very message
    # ran it, failed for good and closed the claim, its letter not yet marked sent
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    classifier = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    batch = classifier.open_batch(event["Records"])
    mine = _arn(event, 0)
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "FAILED"},
            "execution": {"S": mine},
            "error": {"S": "ImageNotFound"},
            "cause": {"S": "gone"},
            "message": {"S": event["Records"][0]["body"]},
        },
    )

    # WHEN this delivery's record is handled
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )

    # THEN its refused reservation settles it from the claim: the letter of that execution,
    # and no second run of the image (DetectLabels could be called twice)
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    [letter] = _letters(cloud, workflow_dlq)
    assert (letter["execution"], letter["status"], letter["error"]) == (
        mine,
        "FAILED",
        {"Error": "ImageNotFound", "Cause": "gone"},
    )
    assert counted(metrics) == {"ExecutionDeadLettered": 1}
    assert result_of(cloud, _url(event))["execution"] == mine


class Crash(Exception):
    """The classifier's process dies: nothing after this point runs."""


class CrashingStepFunctions:
    def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
        raise Crash


def test_crash_after_reservation_holds_copies_until_the_lease_ends(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a classifier that reserved the image and died before its execution started
    crashing = express_classifier(
        cloud,
        metrics,
        cast("SyncStepFunctions", CrashingStepFunctions()),
        workflow_dlq_url=workflow_dlq,
    )
    with pytest.raises(BatchProcessingError):
        process(crashing, event)
    reserved = result_of(cloud, _url(event))
    assert (reserved["status"], reserved["execution"], reserved["open_claim"]) == (
        "IN_PROGRESS",
        reservation_id(event["Records"][0]["messageId"]),
        "OPEN",
    )
    assert reserved["lease_expires_at"] == NOW + CLAIM_LEASE_SECONDS

    # WHEN another post of the image arrives inside the reservation's lease
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    copy = {"Records": [_copy(event, SECOND, post_id="1")]}
    response = process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), copy)

    # THEN it runs nothing (the crashed message comes back after its visibility timeout)
    assert response == {"batchItemFailures": []}
    assert sfn.started == []

    # AND WHEN the crashed message comes back after the lease (visibility timeout > lease)
    later = express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq)
    later.clock = lambda: NOW + CLAIM_LEASE_SECONDS + 1
    later.express = replace(later.express, clock=later.clock)
    response = process(later, event)

    # THEN its reservation takes the expired one over and the image is classified
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert counted(metrics)["Classified"] == 1


def test_refused_start_releases_the_reservation(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN StartSyncExecution is throttled for this message
    refusal = client_error("ThrottlingException", "Rate exceeded", "StartSyncExecution")
    refused = SyncStepFunctions(cloud.dynamodb, succeeded, refuse=refusal)
    with pytest.raises(BatchProcessingError):
        process(express_classifier(cloud, metrics, refused, workflow_dlq_url=workflow_dlq), event)

    # THEN its reservation is closed at once (FAILED, out of the sweep's index), not left to
    # hold the image for a lease
    released = result_of(cloud, _url(event))
    assert (released["status"], released["error"]) == ("FAILED", "StartSyncExecutionFailed")
    assert "open_claim" not in released

    # AND another post of the image runs right away
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    copy = {"Records": [_copy(event, SECOND, post_id="1")]}
    response = process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), copy)
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1


def test_execution_failing_before_its_claim_closes_the_reservation(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an execution that fails in its Claim Image state (the reservation is still there)
    class FailsBeforeClaim:
        def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
            return {
                "executionArn": f"{EXPRESS_ARN_PREFIX}{kwargs['name']}:run-1",
                "status": "FAILED",
                "error": "DynamoDB.AmazonDynamoDBException",
                "cause": "validation",
            }

    classifier = express_classifier(
        cloud, metrics, cast("SyncStepFunctions", FailsBeforeClaim()), workflow_dlq_url=workflow_dlq
    )

    # WHEN its record is processed
    process(classifier, event)

    # THEN the reservation is closed like the execution's claim would be: FAILED, no sweep
    result = result_of(cloud, _url(event))
    assert (result["status"], result["execution"], result["error"]) == (
        "FAILED",
        reservation_id(event["Records"][0]["messageId"]),
        "DynamoDB.AmazonDynamoDBException",
    )
    assert "open_claim" not in result
    assert len(_letters(cloud, workflow_dlq)) == 1


def test_same_content_from_another_message_is_in_flight_not_left_queued(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN another SQS message with exactly this content runs the image (the execution's
    # name carries that message's id)
    owner = f"{EXPRESS_ARN_PREFIX}{express_execution_name(_url(event), SECOND)}:run-0"
    cloud.dynamodb.put_item(
        TableName=RESULTS_TABLE,
        Item={
            "pk": {"S": _url(event)},
            "sk": {"S": "RESULT"},
            "status": {"S": "IN_PROGRESS"},
            "execution": {"S": owner},
            "lease_expires_at": {"N": str(NOW + 100)},
            "message": {"S": event["Records"][0]["body"]},
        },
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN this message is processed
    response = process(
        express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event
    )

    # THEN it is a duplicate in flight, deleted now rather than after its visibility timeout
    assert response == {"batchItemFailures": []}
    assert sfn.started == []
    assert counted(metrics) == {"InFlight": 1}


BILLING = {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 700}


@pytest.mark.parametrize(
    "case",
    [
        ("SUCCEEDED", "Record processed"),
        ("FAILED", "Execution failed transiently; record will be retried"),
    ],
    ids=["classified", "left-on-queue"],
)
def test_what_an_execution_billed_is_logged_once(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, str],
) -> None:
    status, logged_on = case
    event = load_event("classifier_sqs_replay.json")
    # GIVEN an execution whose answer carries billingDetails (what the bench prices)
    answer = {"status": status, "output": "{}", "error": "Lambda.ServiceException"}
    sfn = SyncStepFunctions(cloud.dynamodb, lambda _: answer | {"billingDetails": BILLING})
    caplog.clear()

    # WHEN its record is processed, whether it ends or is left on its queue
    with contextlib.suppress(BatchProcessingError):
        process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)

    # THEN exactly one line carries the billing: the record's outcome, or the retry warning
    billed = [
        entry.getMessage()
        for entry in caplog.records
        if BILLING
        in (getattr(entry, "billing", None), getattr(entry, "record_outcome", {}).get("billing"))
    ]
    assert billed == [logged_on]


# ------------------------------------------------------------------ backoff of a transient failure
# The route queues' visibility timeout under EXPRESS (template.yaml): a record reported as a
# batch item failure, and not backed off, stays invisible this long.
EXPRESS_VISIBILITY_TIMEOUT = "2160"


class RecordedJitter:
    """classifier.backoff's jitter, recorded: answers its lower bound (0 s), so a record backed
    off is visible again at once, where one left to the queue's timeout waits 36 minutes."""

    def __init__(self) -> None:
        self.bounds: list[tuple[int, int]] = []

    def __call__(self, low: int, high: int) -> int:
        self.bounds.append((low, high))
        return low


class ThrottledReservations:
    """moto's DynamoDB, whose UpdateItem (the classifier's reservation) is throttled."""

    def __init__(self, real: DynamoDBClient) -> None:
        self._real = real

    def update_item(self, **kwargs: Any) -> Any:
        raise client_error(
            "ProvisionedThroughputExceededException", "slow down", "UpdateItem", status=400
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class RefusingVisibilitySQS:
    """moto's SQS, refusing ChangeMessageVisibility as a role without the permission would."""

    def __init__(self, real: SQSClient) -> None:
        self._real = real
        self.refused = 0

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self.refused += 1
        raise client_error("AccessDenied", "not authorized", "ChangeMessageVisibility", 403)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def cats_queue(cloud: Cloud) -> str:
    """The cats route queue, with the visibility timeout EXPRESS gives it."""
    url: str = cloud.sqs.get_queue_url(QueueName=CATS_QUEUE)["QueueUrl"]
    cloud.sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": EXPRESS_VISIBILITY_TIMEOUT}
    )
    return url


def delivered(cloud: Cloud, queue_url: str, like: dict[str, Any]) -> dict[str, Any] | None:
    """The next batch of ``queue_url`` as the event source mapping hands it over (real receipt
    handles and receive counts), in the shape of ``like``'s records; None when none is
    visible."""
    messages = cloud.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return None
    template = like["Records"][0]
    return {
        "Records": [
            template
            | {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "md5OfBody": message["MD5OfBody"],
                "attributes": message["Attributes"],
            }
            for message in messages
        ]
    }


def sent_and_delivered(cloud: Cloud, queue_url: str, event: dict[str, Any]) -> dict[str, Any]:
    """The event's first post sent to ``queue_url`` and delivered once."""
    cloud.sqs.send_message(QueueUrl=queue_url, MessageBody=event["Records"][0]["body"])
    batch = delivered(cloud, queue_url, event)
    assert batch is not None
    return batch


def _left_on_queue(failure: BatchProcessingError) -> ExpressRetry:
    (_, retry, _) = failure.child_exceptions[0]
    assert isinstance(retry, ExpressRetry)
    return retry


def test_transient_failure_comes_back_after_a_short_backoff(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a first delivery whose execution is throttled for good by Rekognition
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    sfn = SyncStepFunctions(
        cloud.dynamodb, failed_with("Rekognition.ProvisionedThroughputExceededException")
    )
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN it is left on its queue, its visibility shortened to a backoff of 0 to 10 s (the
    # first receive's ceiling) instead of the queue's hour: SQS delivers it again at once
    assert _left_on_queue(raised.value).back_off is True
    assert jitter.bounds == [(0, 10)]
    again = delivered(cloud, queue, event)
    assert again is not None
    assert [record["attributes"]["ApproximateReceiveCount"] for record in again["Records"]] == ["2"]
    assert counted(metrics) == {"TransientFailure": 1}


def test_backoff_grows_with_each_receive(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN executions that keep failing transiently
    queue = cats_queue(cloud)
    batch = sent_and_delivered(cloud, queue, event)
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("Lambda.ServiceException"))
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the message is delivered and fails three times
    for _ in range(3):
        with pytest.raises(BatchProcessingError):
            process(classifier, batch)
        redelivered = delivered(cloud, queue, event)
        assert redelivered is not None
        batch = redelivered

    # THEN each backoff's ceiling is four times the last: 10, 40, then 160 s
    assert jitter.bounds == [(0, 10), (0, 40), (0, 160)]
    assert batch["Records"][0]["attributes"]["ApproximateReceiveCount"] == "4"


def test_throttled_start_comes_back_after_a_short_backoff(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN StartSyncExecution is throttled
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    refusal = client_error("ThrottlingException", "Rate exceeded", "StartSyncExecution")
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded, refuse=refusal)
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN it is backed off and delivered again at once
    assert _left_on_queue(raised.value).back_off is True
    assert jitter.bounds == [(0, 10)]
    assert delivered(cloud, queue, event) is not None


def test_throttled_reservation_comes_back_after_a_short_backoff(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN DynamoDB throttles the reservation written before the execution starts
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud,
        metrics,
        sfn,
        dynamodb=ThrottledReservations(cloud.dynamodb),
        jitter=jitter,
        workflow_dlq_url=workflow_dlq,
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN no execution starts, and the record is backed off and delivered again at once
    assert _left_on_queue(raised.value).back_off is True
    assert sfn.started == []
    assert jitter.bounds == [(0, 10)]
    assert delivered(cloud, queue, event) is not None


def test_broken_deployment_waits_the_queue_visibility_timeout(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN StartSyncExecution is refused for good (the role may not start the machine)
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    refusal = client_error("AccessDeniedException", "no", "StartSyncExecution")
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded, refuse=refusal)
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN it is not backed off: waiting will not help, the redrive policy dead-letters it
    assert _left_on_queue(raised.value).back_off is False
    assert jitter.bounds == []
    assert delivered(cloud, queue, event) is None


def test_same_message_running_elsewhere_waits_the_queue_visibility_timeout(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a delivery of a message that another delivery of it is running
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    record = first["Records"][0]
    running = SyncStepFunctions(cloud.dynamodb, succeeded)
    running.start_sync_execution(
        stateMachineArn=cloud.state_machine_arn,
        name=express_execution_name(_url(first), record["messageId"]),
        input=json.dumps(
            {
                "message": json.loads(record["body"]),
                "requested_at": NOW,
                "lease_expires_at": NOW + 100,
                "source_queue_arn": record["eventSourceARN"],
                "supersedes": reservation_id(record["messageId"]),
            }
        ),
    )
    cloud.dynamodb.update_item(
        TableName=RESULTS_TABLE,
        Key={"pk": {"S": _url(first)}, "sk": {"S": "RESULT"}},
        UpdateExpression="SET #status = :in_progress",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":in_progress": {"S": "IN_PROGRESS"}},
    )
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the copy is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN it is not backed off: back sooner, it would only find the other delivery still
    # running and spend the message's receives
    retry = _left_on_queue(raised.value)
    assert (str(retry), retry.back_off) == (
        "the same message is running in another delivery",
        False,
    )
    assert sfn.started == []
    assert jitter.bounds == []
    assert delivered(cloud, queue, event) is None


def test_deferred_record_waits_the_queue_visibility_timeout(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN an invocation with less time left than an execution may take (the lease)
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)
    jitter = RecordedJitter()
    classifier = express_classifier(
        cloud, metrics, sfn, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first, remaining_ms=lambda: CLAIM_LEASE_SECONDS * 1_000 - 1)

    # THEN it is deferred to the queue's visibility timeout, not backed off
    assert _left_on_queue(raised.value).back_off is False
    assert jitter.bounds == []
    assert delivered(cloud, queue, event) is None


def test_refused_visibility_change_still_leaves_the_record_queued(
    cloud: Cloud,
    metrics: Metrics,
    workflow_dlq: str,
    event: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN SQS refuses to change the record's visibility
    queue = cats_queue(cloud)
    first = sent_and_delivered(cloud, queue, event)
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("Rekognition.ThrottlingException"))
    sqs = RefusingVisibilitySQS(cloud.sqs)
    classifier = express_classifier(
        cloud, metrics, sfn, sqs=sqs, jitter=RecordedJitter(), workflow_dlq_url=workflow_dlq
    )

    # WHEN the record is processed
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, first)

    # THEN it is still a batch item failure, which comes back after the queue's timeout, and
    # the refusal is named
    assert _left_on_queue(raised.value).transient is True
    assert sqs.refused == 1
    assert delivered(cloud, queue, event) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        "Could not shorten the record's visibility; it comes back after the queue's "
        "visibility timeout"
    ) in warnings


def test_record_of_an_unknown_queue_is_not_backed_off(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN a hand-made event from a queue the deployment lacks, routed by its message
    record = event["Records"][0] | {"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:MyQueue"}
    sfn = SyncStepFunctions(cloud.dynamodb, failed_with("Rekognition.ThrottlingException"))
    jitter = RecordedJitter()
    sqs = RefusingVisibilitySQS(cloud.sqs)
    classifier = express_classifier(
        cloud, metrics, sfn, sqs=sqs, jitter=jitter, workflow_dlq_url=workflow_dlq
    )

    # WHEN the record fails transiently
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, {"Records": [record]})

    # THEN it is left as a batch item failure without asking SQS: no queue of ours holds it
    assert _left_on_queue(raised.value).back_off is True
    assert (jitter.bounds, sqs.refused) == ([], 0)


def _client_losing_update_answers(cloud: Cloud, *, lost: int) -> tuple[Any, list[str]]:
    """A DynamoDB client with the classifier's own config whose first ``lost`` UpdateItem
    answers are lost after moto applied them (botocore sees read timeouts and retries), and
    the list each UpdateItem sent is recorded in."""
    dynamodb = boto3.client(
        "dynamodb", region_name=cloud.dynamodb.meta.region_name, config=AWS_CONFIG
    )
    updates: list[str] = []

    def lose_answer(request: Any, **_: Any) -> None:
        # Registered after moto's own before-send handler, so this runs once moto has answered.
        if request.headers["X-Amz-Target"].endswith(b".UpdateItem"):
            updates.append("sent")
            if len(updates) <= lost:
                raise ReadTimeoutError(endpoint_url=request.url)

    dynamodb.meta.events.register("before-send", lose_answer)
    return dynamodb, updates


def test_reservation_whose_answer_was_lost_is_taken_by_its_retry(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the classifier's own DynamoDB client config, and a first reservation (UpdateItem)
    # whose answer is lost after the table applied it: botocore sees a read timeout and sends
    # the same write again, which the item the first attempt wrote refuses
    dynamodb, updates = _client_losing_update_answers(cloud, lost=1)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the new image's record is processed
    response = process(
        express_classifier(cloud, metrics, sfn, dynamodb=dynamodb, workflow_dlq_url=workflow_dlq),
        event,
    )

    # THEN the refused retry is recognised as this call's own write: the execution runs and the
    # image is classified (not left queued as "running in another delivery")
    assert updates == ["sent", "sent"]
    assert response == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert result_of(cloud, _url(event))["execution"].startswith(EXPRESS_ARN_PREFIX)
    assert counted(metrics) == {"Classified": 1}
    assert _letters(cloud, workflow_dlq) == []


def test_reservation_written_but_never_answered_is_released_for_the_redelivery(
    cloud: Cloud, metrics: Metrics, workflow_dlq: str, event: dict[str, Any]
) -> None:
    # GIVEN the classifier's own DynamoDB client config, a first reservation attempt that the
    # table applied but whose answer is lost, and a second (last) attempt that times out too
    dynamodb, updates = _client_losing_update_answers(cloud, lost=2)
    sfn = SyncStepFunctions(cloud.dynamodb, succeeded)

    # WHEN the record is processed (the only record: Powertools raises for the whole batch),
    # then delivered again to a classifier whose calls answer
    with pytest.raises(BatchProcessingError) as raised:
        process(
            express_classifier(
                cloud, metrics, sfn, dynamodb=dynamodb, workflow_dlq_url=workflow_dlq
            ),
            event,
        )
    released = result_of(cloud, _url(event))
    again = process(express_classifier(cloud, metrics, sfn, workflow_dlq_url=workflow_dlq), event)

    # THEN the first delivery released its own reservation as a failed start (a third
    # UpdateItem) and went back to its queue; the redelivery took the image over at once and
    # classified it, with no letter: one end for the message
    message_id = event["Records"][0]["messageId"]
    assert updates == ["sent", "sent", "sent"]
    (_, failure, _) = raised.value.child_exceptions[0]
    assert isinstance(failure, ExpressRetry)
    assert failure.transient is True
    assert (released["status"], released["execution"], released["error"]) == (
        "FAILED",
        reservation_id(message_id),
        START_FAILED_ERROR,
    )
    assert again == {"batchItemFailures": []}
    assert len(sfn.started) == 1
    assert result_of(cloud, _url(event))["execution"].startswith(EXPRESS_ARN_PREFIX)
    assert counted(metrics)["Classified"] == 1
    assert _letters(cloud, workflow_dlq) == []
