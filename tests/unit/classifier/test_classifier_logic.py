"""ClassifierFunction's record handling, driven through Powertools' BatchProcessor as in app.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.exceptions import BotoCoreError, EndpointConnectionError, NoCredentialsError

from classifier.logic import (
    Classifier,
    DeadLetterSendFailed,
    ExecutionStartFailed,
    RecordNotInBatch,
    UnknownSourceQueue,
    is_transient,
    parse_body,
)
from classifier.lookup import DoneLookupFailed
from classifier.models import Rejection, RouteQueueRecord
from classifier.settings import load_settings
from common.messages import NO_EXECUTION, PhotoMessage, execution_arn, execution_name
from tests.unit.classifier.classifier_testkit import (
    CLAIM_LEASE_SECONDS,
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
THROTTLED = client_error("ThrottlingException", "Rate exceeded", "StartExecution")


class FailingStepFunctions:
    """moto's Step Functions, except that StartExecution raises for chosen execution names."""

    def __init__(self, real: SFNClient, failures: dict[str, Exception]) -> None:
        self._real = real
        self._failures = failures

    def start_execution(self, **kwargs: Any) -> Any:
        if kwargs["name"] in self._failures:
            raise self._failures[kwargs["name"]]
        return self._real.start_execution(**kwargs)

    def describe_execution(self, **kwargs: Any) -> Any:
        name = str(kwargs["executionArn"]).rpartition(":")[2]
        if name in self._failures:
            raise self._failures[name]
        return self._real.describe_execution(**kwargs)


class EndedStepFunctions:
    """moto's Step Functions, except that DescribeExecution reports chosen executions FAILED
    with an error: moto keeps executions RUNNING and cannot fail one with a task's error."""

    def __init__(self, real: SFNClient, failed: dict[str, str]) -> None:
        self._real = real
        self._failed = failed

    def start_execution(self, **kwargs: Any) -> Any:
        return self._real.start_execution(**kwargs)

    def describe_execution(self, **kwargs: Any) -> Any:
        described = dict(self._real.describe_execution(**kwargs))
        error = self._failed.get(str(kwargs["executionArn"]))
        if error is not None:
            described |= {"status": "FAILED", "error": error}
        return described


class FailingSQS:
    def __init__(self, error: Exception) -> None:
        self._error = error
        self.sent = 0

    def send_message(self, **kwargs: Any) -> Any:
        self.sent += 1
        raise self._error


class FailingDynamoDB:
    """BatchGetItem is refused; other calls (the rejection markers) reach ``real`` if given."""

    def __init__(self, real: DynamoDBClient | None = None) -> None:
        self._real = real

    def batch_get_item(self, **kwargs: Any) -> Any:
        raise client_error("AccessDeniedException", "not authorized", "BatchGetItem")

    def update_item(self, **kwargs: Any) -> Any:
        if self._real is None:
            raise client_error("AccessDeniedException", "not authorized", "UpdateItem")
        return self._real.update_item(**kwargs)


def make_classifier(
    cloud: Cloud,
    metrics: Metrics,
    *,
    sqs: object | None = None,
    stepfunctions: object | None = None,
    dynamodb: object | None = None,
    environment: dict[str, str] | None = None,
) -> Classifier:
    return Classifier(
        settings=load_settings(cloud.environment() | (environment or {})),
        sqs=cast("SQSClient", sqs or cloud.sqs),
        stepfunctions=cast("SFNClient", stepfunctions or cloud.stepfunctions),
        dynamodb=cast("DynamoDBClient", dynamodb or cloud.dynamodb),
        metrics=metrics,
        clock=lambda: NOW + 0.75,
        sleep=no_sleep,
    )


def process(classifier: Classifier, event: dict[str, Any]) -> PartialItemFailureResponse:
    """What app.lambda_handler does, with a given Classifier."""
    batch = classifier.open_batch(event["Records"])
    processor = BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord)
    return process_partial_response(
        event=event, record_handler=batch.handle_record, processor=processor
    )


def counted(metrics: Metrics) -> dict[str, float]:
    """Sum of every metric recorded so far (not yet flushed)."""
    return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}


def message_of(event: dict[str, Any], index: int) -> PhotoMessage:
    return PhotoMessage.model_validate_json(event["Records"][index]["body"])


def expected_input(
    record: dict[str, Any], source_queue_arn: str, supersedes: str = NO_EXECUTION
) -> dict[str, Any]:
    return {
        "message": json.loads(record["body"]),
        "requested_at": NOW,
        "lease_expires_at": NOW + CLAIM_LEASE_SECONDS,
        "source_queue_arn": source_queue_arn,
        "supersedes": supersedes,
    }


def start_named(cloud: Cloud, name: str, *, ended: bool) -> str:
    """An execution of the state machine with this name, stopped (ABORTED) if ``ended``."""
    arn: str = cloud.stepfunctions.start_execution(
        stateMachineArn=cloud.state_machine_arn, name=name, input="{}"
    )["executionArn"]
    if ended:
        cloud.stepfunctions.stop_execution(executionArn=arn)
    return arn


def test_replay_of_a_failed_image_starts_the_next_execution(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the first execution for this image failed and its result is FAILED
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(message.url, "FAILED", execution=first)

    # WHEN the message replayed from the workflow DLQ is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN a second execution starts under the next name, with the replayed message
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {
        execution_name(message.url, 1): {},
        execution_name(message.url, 2): expected_input(event["Records"][0], cloud.cats_queue_arn),
    }
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_claim_of_an_ended_execution_is_superseded_inside_its_lease(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN an IN_PROGRESS claim whose execution was aborted before the closer marked it
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    owner = start_named(cloud, execution_name(message.url, 3), ended=True)
    cloud.put_result(message.url, "IN_PROGRESS", execution=owner)

    # WHEN a message for the image arrives
    response = process(make_classifier(cloud, metrics), event)

    # THEN the next execution starts and may take the stale claim over
    assert response == {"batchItemFailures": []}
    assert cloud.executions()[execution_name(message.url, 4)] == expected_input(
        event["Records"][0], cloud.cats_queue_arn, supersedes=owner
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def _earlier_post(message: PhotoMessage, *, attempt: int | None = None) -> str:
    """Another post of the same photo, as a claim records the message it ran (JSON)."""
    changes: dict[str, Any] = {"post_id": "1"}
    if attempt is not None:
        changes["attempt"] = attempt
    return message.model_copy(update=changes).model_dump_json()


def test_later_post_of_an_image_failed_for_good_starts_nothing(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN another post's execution for this photo failed for good, and the closer closed
    # its claim FAILED (and sent its one dead letter)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(
        message.url, "FAILED", first, error="ImageNotFound", message=_earlier_post(message)
    )

    # WHEN this post's message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is a duplicate of that failure: no second execution
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 1)]
    assert counted(metrics) == {"Duplicate": 1}


def test_replay_of_an_image_failed_for_good_starts_the_next_execution(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the image's execution failed for good for a message one attempt below this one
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    failed = message.model_copy(update={"attempt": message.attempt - 1}).model_dump_json()
    cloud.put_result(message.url, "FAILED", first, error="ImageNotFound", message=failed)

    # WHEN the message replayed from the workflow DLQ (attempt + 1) is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN the next execution starts
    assert response == {"batchItemFailures": []}
    assert cloud.executions()[execution_name(message.url, 2)] == expected_input(
        event["Records"][0], cloud.cats_queue_arn
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_replay_behind_a_later_post_in_one_batch_starts_the_next_execution(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN an image whose execution failed for good, and a batch holding a later post of the
    # photo first and the replay of its letter (attempt + 1) after it
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    failed = message.model_copy(update={"attempt": message.attempt - 1}).model_dump_json()
    cloud.put_result(message.url, "FAILED", first, error="ImageNotFound", message=failed)
    replay = event["Records"][0]
    later_post = replay | {
        "messageId": "later-post",
        "receiptHandle": "receipt-later-post",
        "body": message.model_copy(
            update={"post_id": "1", "attempt": message.attempt - 1}
        ).model_dump_json(),
    }
    batch = {"Records": [later_post, replay]}

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics), batch)

    # THEN the later post is a duplicate of the failure, and the replay, which its outcome
    # does not cover, still starts the next execution
    assert response == {"batchItemFailures": []}
    assert cloud.executions()[execution_name(message.url, 2)] == expected_input(
        replay, cloud.cats_queue_arn
    )
    assert counted(metrics) == {"Duplicate": 1, "ExecutionStarted": 1}


def test_later_post_after_a_transient_failure_starts_the_next_execution(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN another post's execution was throttled after the workflow's retries (dead-lettered
    # under STANDARD, but nothing is wrong with the image)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(
        message.url,
        "FAILED",
        first,
        error="Rekognition.ThrottlingException",
        message=_earlier_post(message),
    )

    # WHEN this post's message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it starts the next execution
    assert response == {"batchItemFailures": []}
    assert sorted(cloud.executions()) == sorted(
        [execution_name(message.url, 1), execution_name(message.url, 2)]
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_later_post_after_an_image_host_error_starts_the_next_execution(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN another post's execution failed because the image host did not answer (after the
    # workflow's retries of Fetch Image, before Detect Labels) and was dead-lettered
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(
        message.url, "FAILED", first, error="ImageHostError", message=_earlier_post(message)
    )

    # WHEN this post's message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it takes the image over: the next execution starts with this message
    assert response == {"batchItemFailures": []}
    assert cloud.executions()[execution_name(message.url, 2)] == expected_input(
        event["Records"][0], cloud.cats_queue_arn
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_copy_of_the_message_failed_by_the_image_host_is_a_duplicate(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN this very post's message failed with ImageHostError and was dead-lettered (its one
    # letter), and a copy of it arrives (re-published after a producer crash, say)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(
        message.url, "FAILED", first, error="ImageHostError", message=message.model_dump_json()
    )

    # WHEN the copy is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is a duplicate of that failure, whose letter stands for it: nothing starts
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 1)]
    assert counted(metrics) == {"Duplicate": 1}


def _failed_by_the_host_before_the_closer(
    cloud: Cloud, metrics: Metrics, claimed: PhotoMessage
) -> Classifier:
    """An IN_PROGRESS claim (for ``claimed``) whose execution ended with ImageHostError, not yet
    closed by the closer; the classifier that sees it so."""
    owner = start_named(cloud, execution_name(claimed.url, 3), ended=False)
    cloud.put_result(claimed.url, "IN_PROGRESS", owner, message=claimed.model_dump_json())
    stepfunctions = EndedStepFunctions(cloud.stepfunctions, {owner: "ImageHostError"})
    return make_classifier(cloud, metrics, stepfunctions=stepfunctions)


def test_later_post_takes_over_a_claim_failed_by_the_image_host_before_the_closer_runs(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN another post's execution ended with ImageHostError, its claim not yet closed
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    classifier = _failed_by_the_host_before_the_closer(
        cloud, metrics, message.model_copy(update={"post_id": "1"})
    )
    owner = execution_arn(cloud.state_machine_arn, execution_name(message.url, 3))

    # WHEN this post's message is processed
    response = process(classifier, event)

    # THEN the next execution starts, allowed to take the ended one's claim over
    assert response == {"batchItemFailures": []}
    assert sorted(cloud.executions()) == sorted(
        [execution_name(message.url, 3), execution_name(message.url, 4)]
    )
    assert cloud.executions()[execution_name(message.url, 4)] == expected_input(
        event["Records"][0], cloud.cats_queue_arn, supersedes=owner
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_copy_of_a_message_failed_by_the_image_host_before_the_closer_runs_is_a_duplicate(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN this very post's execution ended with ImageHostError, its claim not yet closed
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    classifier = _failed_by_the_host_before_the_closer(cloud, metrics, message)

    # WHEN a copy of the message is processed
    response = process(classifier, event)

    # THEN it is a duplicate of that failure (the closer sends its one letter): nothing starts
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 3)]
    assert counted(metrics) == {"Duplicate": 1}


def test_claim_of_an_execution_ended_for_good_is_a_duplicate_before_the_closer_runs(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN an IN_PROGRESS claim of another post's execution, aborted before the closer closed
    # the claim (the closer will dead-letter it)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    owner = start_named(cloud, execution_name(message.url, 3), ended=True)
    cloud.put_result(message.url, "IN_PROGRESS", owner, message=_earlier_post(message))

    # WHEN this post's message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is a duplicate of that failure, as it is once the claim is closed
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 3)]
    assert counted(metrics) == {"Duplicate": 1}


def test_name_taken_by_an_execution_failed_for_good_since_the_lookup_is_a_duplicate(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the batch's lookup found the image new, then another post's execution took name 1,
    # failed for good and was closed
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    classifier = make_classifier(cloud, metrics)
    batch = classifier.open_batch(event["Records"])
    first = start_named(cloud, execution_name(message.url, 1), ended=True)
    cloud.put_result(
        message.url, "FAILED", first, error="ImageNotFound", message=_earlier_post(message)
    )

    # WHEN this post's record is handled
    response = process_partial_response(
        event=event,
        record_handler=batch.handle_record,
        processor=BatchProcessor(event_type=EventType.SQS, model=RouteQueueRecord),
    )

    # THEN name 1 is taken, the item read again makes it a duplicate: no name 2
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 1)]
    assert counted(metrics) == {"Duplicate": 1}


def test_claim_of_a_running_execution_makes_the_message_in_flight(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN an IN_PROGRESS claim whose execution is still running
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    owner = start_named(cloud, execution_name(message.url, 2), ended=False)
    cloud.put_result(message.url, "IN_PROGRESS", execution=owner)

    # WHEN a message for the image arrives
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is deleted as in flight and nothing new starts
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [execution_name(message.url, 2)]
    assert counted(metrics) == {"InFlight": 1}


def test_name_taken_by_an_ended_execution_moves_to_the_next(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN a racing classifier's execution took name 1 and already ended (no claim written)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    start_named(cloud, execution_name(message.url, 1), ended=True)

    # WHEN the message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it starts under name 2, not swallowed as a duplicate of the ended one
    assert response == {"batchItemFailures": []}
    assert sorted(cloud.executions()) == sorted(
        [execution_name(message.url, 1), execution_name(message.url, 2)]
    )
    assert counted(metrics) == {"ExecutionStarted": 1}


def test_describe_failure_leaves_the_record_on_its_queue(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN a claim whose owner cannot be described right now (throttled)
    event = load_event("classifier_sqs_replay.json")
    message = message_of(event, 0)
    owner = start_named(cloud, execution_name(message.url, 1), ended=False)
    cloud.put_result(message.url, "IN_PROGRESS", execution=owner)
    stepfunctions = FailingStepFunctions(
        cloud.stepfunctions,
        {execution_name(message.url, 1): client_error("ThrottlingException", "slow", "Describe")},
    )

    # WHEN the message is processed
    # THEN its only record fails (Powertools raises for a wholly failed batch), as transient
    with pytest.raises(BatchProcessingError):
        process(make_classifier(cloud, metrics, stepfunctions=stepfunctions), event)
    assert list(cloud.executions()) == [execution_name(message.url, 1)]
    assert counted(metrics) == {"TransientFailure": 1}


def test_done_url_is_never_started(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the replayed image was classified meanwhile
    event = load_event("classifier_sqs_replay.json")
    cloud.put_result(message_of(event, 0).url, "DONE")

    # WHEN the message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is deleted as a duplicate and nothing is started
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {}
    assert counted(metrics) == {"Duplicate": 1}


def test_done_urls_in_a_batch_are_skipped_and_the_rest_started(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN two of the batch's images are DONE and one is IN_PROGRESS (the Claim state decides)
    event = load_event("classifier_sqs_batch.json")
    cloud.put_result(message_of(event, 0).url, "DONE")
    cloud.put_result(message_of(event, 1).url, "DONE")
    cloud.put_result(message_of(event, 3).url, "IN_PROGRESS")

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN records 0 and 1, and record 4 (same image as record 0), are duplicates
    assert response == {"batchItemFailures": []}
    assert sorted(cloud.executions()) == sorted(
        execution_name(message_of(event, index).url, 1) for index in (3, 5, 6, 7, 8, 9)
    )
    assert counted(metrics) == {"ExecutionStarted": 6, "Duplicate": 3, "Rejected": 1}


def test_same_url_twice_in_a_batch_starts_once_from_the_first_record(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the batch sample, where record 4 carries the image of record 0 from another post
    event = load_event("classifier_sqs_batch.json")
    assert message_of(event, 4).url == message_of(event, 0).url

    # WHEN the batch is processed
    process(make_classifier(cloud, metrics), event)

    # THEN the image's one execution carries record 0's message
    executions = cloud.executions()
    name = execution_name(message_of(event, 0).url, 1)
    assert executions[name] == expected_input(event["Records"][0], cloud.cats_queue_arn)
    assert len(executions) == 8


def test_existing_running_execution_makes_the_record_in_flight(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN an execution with the message's name already runs (a redelivered message)
    event = load_event("classifier_sqs_replay.json")
    name = execution_name(message_of(event, 0).url, 1)
    cloud.stepfunctions.start_execution(
        stateMachineArn=cloud.state_machine_arn, name=name, input='{"earlier": true}'
    )

    # WHEN the message is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN StartExecution's ExecutionAlreadyExists deletes the record without a new execution
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {name: {"earlier": True}}
    assert counted(metrics) == {"InFlight": 1}


@pytest.mark.parametrize(
    "error",
    [
        THROTTLED,
        client_error("ServiceUnavailable", "try again", "StartExecution", status=503),
        EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com/"),
    ],
    ids=["throttled", "unavailable", "connection"],
)
def test_transient_start_failure_fails_only_that_record(
    cloud: Cloud, metrics: Metrics, error: Exception
) -> None:
    # GIVEN StartExecution fails transiently for the image of the batch's second record
    event = load_event("classifier_sqs_batch.json")
    failing = execution_name(message_of(event, 1).url, 1)
    stepfunctions = FailingStepFunctions(cloud.stepfunctions, {failing: error})

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics, stepfunctions=stepfunctions), event)

    # THEN exactly that record is reported for SQS to deliver again; the others are done
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert len(cloud.executions()) == 7
    assert counted(metrics) == {
        "ExecutionStarted": 7,
        "TransientFailure": 1,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_missing_state_machine_fails_the_record_as_a_configuration_error(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN STATE_MACHINE_ARN names a state machine that does not exist
    event = load_event("classifier_sqs_replay.json")
    wrong_arn = cloud.state_machine_arn + "-deleted"
    classifier = make_classifier(cloud, metrics, environment={"STATE_MACHINE_ARN": wrong_arn})

    # WHEN the (only) record is processed
    # THEN it fails; as every record failed, Powertools raises instead of listing them, so the
    # invocation fails and SQS delivers the batch again until the redrive policy moves it
    with pytest.raises(BatchProcessingError) as raised:
        process(classifier, event)
    (error_type, error, _) = raised.value.child_exceptions[0]
    assert error_type is ExecutionStartFailed
    assert isinstance(error, ExecutionStartFailed)
    assert error.transient is False
    assert str(error) == (
        f"StartExecution {execution_name(message_of(event, 0).url, 1)} failed: An error occurred "
        f"(StateMachineDoesNotExist) when calling the StartExecution operation: "
        f"State Machine Does Not Exist: '{wrong_arn}'"
    )
    assert counted(metrics) == {"ConfigurationError": 1}


def test_every_record_failing_raises_batch_processing_error(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN StartExecution is throttled for the only record of the batch
    event = load_event("classifier_sqs_replay.json")
    stepfunctions = FailingStepFunctions(
        cloud.stepfunctions, {execution_name(message_of(event, 0).url, 1): THROTTLED}
    )

    # WHEN it is processed THEN the whole batch fails (Powertools 3.37 behaviour)
    with pytest.raises(BatchProcessingError) as raised:
        process(make_classifier(cloud, metrics, stepfunctions=stepfunctions), event)
    assert str(raised.value).startswith(
        "All records failed processing. 1 individual errors logged separately below."
    )
    assert counted(metrics) == {"TransientFailure": 1}


def test_invalid_body_goes_to_its_route_dlq_with_the_reason(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the batch sample, whose third record is a truncated JSON body
    event = load_event("classifier_sqs_batch.json")
    poison = event["Records"][2]

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN the poison record is not retried: it is in the cats DLQ, unchanged, with the reason
    # and the id of the message it was (the letter is a new SQS message with its own id)
    assert response == {"batchItemFailures": []}
    assert cloud.dead_letters(cloud.cats_dlq_url) == [
        {
            "body": poison["body"],
            "error": "NotJson",
            "reason": "body: Invalid JSON: EOF while parsing a string at line 1 column 109",
            "source_message_id": poison["messageId"],
        }
    ]
    assert cloud.dead_letters(cloud.dogs_dlq_url) == []


def test_rejection_is_dead_lettered_once_however_often_its_batch_comes(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the batch sample with its truncated JSON record, already processed once
    event = load_event("classifier_sqs_batch.json")
    poison = event["Records"][2]
    process(make_classifier(cloud, metrics), event)

    # WHEN SQS delivers the same batch again (the invocation failed after the letter was sent)
    response = process(make_classifier(cloud, metrics), event)

    # THEN the poison record is deleted again as Rejected, but its letter is not sent twice
    assert response == {"batchItemFailures": []}
    assert [
        (letter["body"], letter["source_message_id"])
        for letter in cloud.dead_letters(cloud.cats_dlq_url)
    ] == [(poison["body"], poison["messageId"])]
    assert counted(metrics)["Rejected"] == 2


def test_each_kind_of_invalid_body_is_named(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN one record per kind of invalid body
    event = load_event("classifier_sqs_invalid.json")

    # WHEN they are processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN each is in the DLQ, in order, with its error name, reason and message id; none is
    # retried
    assert response == {"batchItemFailures": []}
    assert cloud.dead_letters(cloud.cats_dlq_url) == [
        {
            "body": record["body"],
            "error": error,
            "reason": reason,
            "source_message_id": record["messageId"],
        }
        for record, (error, reason) in zip(
            event["Records"],
            [
                ("NotJson", "body: Invalid JSON: expected value at line 1 column 1"),
                ("InvalidMessage", "body: Input should be an object"),
                ("InvalidMessage", "url: Field required"),
                ("InvalidMessage", "hashtags: Input should be a valid array"),
                ("InvalidMessage", "url: Value error, url must use https"),
                ("InvalidMessage", "url: Value error, url must not carry credentials"),
                ("InvalidMessage", "text: String should have at most 4000 characters"),
            ],
            strict=True,
        )
    ]
    assert cloud.executions() == {}
    assert counted(metrics) == {"Rejected": 7}


def test_reason_is_cleaned_and_truncated() -> None:
    # GIVEN a body with many unknown fields whose names hold control characters
    message = json.loads(load_event("classifier_sqs_replay.json")["Records"][0]["body"])
    body = json.dumps(message | {f"x\u0000\u0007{index}" + "k" * 100: 1 for index in range(20)})

    # WHEN it is validated
    rejection = parse_body(body)

    # THEN the reason keeps SQS-safe characters only, each field name cut, 1 KiB in all
    assert isinstance(rejection, Rejection)
    assert rejection.error == "InvalidMessage"
    field = "x??0" + "k" * 60
    assert rejection.reason.startswith(f"{field}: Extra inputs are not permitted; x??1")
    assert len(rejection.reason) == 1024
    assert rejection.reason.endswith("...")


def test_rejection_whose_sent_mark_is_refused_is_done_with_one_letter(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN a batch with one poison record, and DynamoDB refusing the write that marks its
    # letter SENT (after SendMessage to the route DLQ succeeded)
    event = load_event("classifier_sqs_batch.json")
    poison = event["Records"][2]
    dynamodb = MarkSentRefused(cloud.dynamodb)

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics, dynamodb=dynamodb), event)

    # THEN the record is done (not retried: a retry would find the marker PENDING and send a
    # second letter) and its one letter is on the route DLQ
    assert dynamodb.refused == 1
    assert response == {"batchItemFailures": []}
    assert [letter["body"] for letter in cloud.dead_letters(cloud.cats_dlq_url)] == [poison["body"]]
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "Rejected": 1}


def test_dlq_send_failure_fails_the_record(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN the dead-letter queue cannot be written to
    event = load_event("classifier_sqs_batch.json")
    sqs = FailingSQS(client_error("AccessDenied", "not authorized", "SendMessage"))

    # WHEN the batch with its poison record is processed
    response = process(make_classifier(cloud, metrics, sqs=sqs), event)

    # THEN the poison record stays on its queue (never silently dropped); the rest proceed
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    assert sqs.sent == 1
    assert len(cloud.executions()) == 8
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "ConfigurationError": 1}


def test_dlq_send_failure_raises_a_named_error(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN SendMessage to the DLQ is throttled and the poison record is alone in its batch
    event = load_event("classifier_sqs_invalid.json")
    event = {"Records": event["Records"][:1]}
    sqs = FailingSQS(client_error("RequestThrottled", "slow down", "SendMessage"))

    # WHEN it is processed THEN the named error is what failed the batch
    with pytest.raises(BatchProcessingError) as raised:
        process(make_classifier(cloud, metrics, sqs=sqs), event)
    assert raised.value.child_exceptions[0][0] is DeadLetterSendFailed
    assert counted(metrics) == {"TransientFailure": 1}


STRAY_QUEUE = "arn:aws:sqs:us-east-1:123456789012:tweetlens-dev-BirdsQueue-Zz9Yy8Xx7Ww6"


def test_valid_message_from_an_unknown_queue_is_routed_by_its_message(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN a record from a queue that ROUTE_DLQ_URLS does not list, carrying a valid cats
    # message, in a batch of records from the cats queue
    event = load_event("classifier_sqs_batch.json")
    event["Records"][9] = event["Records"][9] | {"eventSourceARN": STRAY_QUEUE}

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN it is handled like the others: its execution is started, naming where it came from
    assert response == {"batchItemFailures": []}
    started = cloud.executions()[execution_name(message_of(event, 9).url, 1)]
    assert started == expected_input(event["Records"][9], STRAY_QUEUE)
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "Rejected": 1}


def test_invalid_body_from_an_unknown_queue_fails_by_name_and_is_not_dead_lettered(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the batch sample whose truncated JSON record comes from an unknown queue
    event = load_event("classifier_sqs_batch.json")
    event["Records"][2] = event["Records"][2] | {"eventSourceARN": STRAY_QUEUE}

    # WHEN the batch is processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN that record fails (nothing trustworthy names its dead-letter queue), no DLQ gets it,
    # and the rest of the batch goes on
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    assert cloud.dead_letters(cloud.cats_dlq_url) == []
    assert cloud.dead_letters(cloud.dogs_dlq_url) == []
    assert counted(metrics) == {"ExecutionStarted": 8, "Duplicate": 1, "ConfigurationError": 1}


def test_unknown_queue_and_invalid_body_is_unknown_source_queue(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the only record comes from an unknown queue and its body is not JSON
    event = load_event("classifier_sqs_replay.json")
    event["Records"][0] = event["Records"][0] | {"eventSourceARN": STRAY_QUEUE, "body": "{"}

    # WHEN it is processed THEN UnknownSourceQueue failed it, naming the queue and why
    with pytest.raises(BatchProcessingError) as raised:
        process(make_classifier(cloud, metrics), event)
    (error_type, error, _) = raised.value.child_exceptions[0]
    assert error_type is UnknownSourceQueue
    assert str(error) == (
        f"record from unknown queue {STRAY_QUEUE} is no valid message (NotJson), "
        "so nothing names its route"
    )


def test_unknown_queue_and_unknown_route_is_unknown_source_queue(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN the only record comes from an unknown queue, with a valid message of a route this
    # deployment does not have
    event = load_event("classifier_sqs_replay.json")
    body = json.loads(event["Records"][0]["body"]) | {"route": "birds"}
    event["Records"][0] = event["Records"][0] | {
        "eventSourceARN": STRAY_QUEUE,
        "body": json.dumps(body),
    }

    # WHEN it is processed THEN UnknownSourceQueue failed it, naming the routes there are, and
    # nothing was started
    with pytest.raises(BatchProcessingError) as raised:
        process(make_classifier(cloud, metrics), event)
    (error_type, error, _) = raised.value.child_exceptions[0]
    assert error_type is UnknownSourceQueue
    assert str(error) == (
        f"record from unknown queue {STRAY_QUEUE} names route 'birds', not one of cats, dogs"
    )
    assert cloud.executions() == {}
    assert counted(metrics) == {"ConfigurationError": 1}


def test_route_queue_decides_where_a_record_belongs_whatever_its_message_says(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN records on the dogs queue: a cats message, and a body that is not JSON but says
    # "cats" where a route would be
    event = load_event("classifier_sqs_replay.json")
    cats_message = event["Records"][0] | {"eventSourceARN": cloud.dogs_queue_arn}
    not_json = event["Records"][0] | {
        "eventSourceARN": cloud.dogs_queue_arn,
        "messageId": "0b5f4c2e-1d3a-4e6b-8f7c-9a0b1c2d3e4f",
        "receiptHandle": "AQEBdogs-not-json",
        "body": '{"route": "cats", ',
    }
    event["Records"] = [cats_message, not_json]

    # WHEN they are processed
    response = process(make_classifier(cloud, metrics), event)

    # THEN the message is classified as it came, and the rejection goes to the dogs DLQ only
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions().values()) == [expected_input(cats_message, cloud.dogs_queue_arn)]
    assert [letter["body"] for letter in cloud.dead_letters(cloud.dogs_dlq_url)] == [
        not_json["body"]
    ]
    assert cloud.dead_letters(cloud.cats_dlq_url) == []


def test_lookup_failure_fails_the_invocation_before_any_start(
    cloud: Cloud, metrics: Metrics
) -> None:
    # GIVEN ResultsTable cannot be read
    event = load_event("classifier_sqs_batch.json")
    classifier = make_classifier(cloud, metrics, dynamodb=FailingDynamoDB())

    # WHEN the batch is opened THEN it fails and nothing has been started or rejected
    with pytest.raises(DoneLookupFailed):
        classifier.open_batch(event["Records"])
    assert cloud.executions() == {}
    assert cloud.dead_letters(cloud.cats_dlq_url) == []
    # AND a denied read is a deployment problem, not a passing one
    assert counted(metrics) == {"ConfigurationError": 1}


def test_record_not_in_the_opened_batch_is_refused(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN a batch opened for the replay sample
    batch = make_classifier(cloud, metrics).open_batch(
        load_event("classifier_sqs_replay.json")["Records"]
    )
    stranger = RouteQueueRecord.model_validate(
        load_event("classifier_sqs_batch.json")["Records"][0]
    )

    # WHEN its handler is given a record of another batch THEN it refuses it
    with pytest.raises(RecordNotInBatch) as raised:
        batch.handle_record(stranger)
    assert str(raised.value) == f"record {stranger.messageId} was not in the opened batch"
    assert cloud.executions() == {}


def test_batch_of_invalid_bodies_needs_no_lookup(cloud: Cloud, metrics: Metrics) -> None:
    # GIVEN a batch with no valid body and a table that cannot be read
    event = load_event("classifier_sqs_invalid.json")
    classifier = make_classifier(cloud, metrics, dynamodb=FailingDynamoDB(cloud.dynamodb))

    # WHEN it is processed THEN the lookup is skipped and every record is rejected
    assert process(classifier, event) == {"batchItemFailures": []}
    assert counted(metrics) == {"Rejected": 7}


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("ThrottlingException", "Rate exceeded", "StartExecution"), True),
        (client_error("ExecutionLimitExceeded", "too many", "StartExecution"), True),
        (client_error("KmsThrottlingException", "kms", "StartExecution"), True),
        (client_error("SomethingNew", "?", "StartExecution", status=500), True),
        (client_error("SlowDown", "?", "StartExecution", status=429), True),
        (EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com/"), True),
        (client_error("StateMachineDoesNotExist", "gone", "StartExecution"), False),
        (client_error("InvalidArn", "bad", "StartExecution"), False),
        (client_error("InvalidExecutionInput", "bad", "StartExecution"), False),
        (client_error("AccessDeniedException", "no", "StartExecution"), False),
        (NoCredentialsError(), False),
        (BotoCoreError(), False),
    ],
)
def test_transient_errors_are_told_apart(error: Exception, transient: bool) -> None:
    # GIVEN an error raised by an AWS call
    # WHEN it is classified THEN only "not now" errors are transient
    assert is_transient(error) is transient
