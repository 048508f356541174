"""ClassifierFunction's handler against moto: sample events in, queues and executions out."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext

from classifier.logic import UnknownSourceQueue
from classifier.lookup import DoneLookupFailed
from classifier.settings import InvalidSettings
from tests.unit.classifier.classifier_testkit import (
    CLAIM_LEASE_SECONDS,
    EVENTS_DIR,
    Cloud,
    client_error,
    load_event,
)

NOW = 1_732_700_000
# The batch sample: record 2 is the poison, record 4 repeats record 0's image.
STARTED_URLS = [
    "https://pbs.twimg.com/media/GdLq3aXWkAAe9fT.jpg",
    "https://pbs.twimg.com/media/GdLq4bYWAAA7pQs.jpg",
    "https://pbs.twimg.com/media/GdLq5cZXoAAk2Hd.jpg",
    "https://pbs.twimg.com/media/GdLq6dAWMAAxR4u.jpg",
    "https://pbs.twimg.com/media/GdLq7eBXsAAf1Lm.jpg",
    "https://pbs.twimg.com/media/GdLq8fCWQAAn5Yc.jpg",
    "https://pbs.twimg.com/media/GdLq9gDXIAAz8Kv.jpg",
    "https://pbs.twimg.com/media/GdLr0hEWwAAc3Nb.jpg",
]
STARTED_RECORDS = [0, 1, 3, 5, 6, 7, 8, 9]


class FailingDynamoDB:
    def batch_get_item(self, **kwargs: Any) -> Any:
        raise client_error("ProvisionedThroughputExceededException", "slow down", "BatchGetItem")


@pytest.fixture
def app(cloud: Cloud, metrics: Metrics, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """classifier.app freshly cold-started in the emulated account, with a fixed clock."""
    for name, value in cloud.environment().items():
        monkeypatch.setenv(name, value)
    module = (
        importlib.reload(sys.modules["classifier.app"])
        if "classifier.app" in sys.modules
        else importlib.import_module("classifier.app")
    )
    monkeypatch.setattr(module.classifier, "clock", lambda: NOW + 0.75)
    return module


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Business metrics in the EMF lines Powertools printed (the cold start one left out)."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        blob = json.loads(line)
        if "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "tweetlens"
            for metric in directive["Metrics"]:
                if metric["Name"] == "ColdStart":
                    continue
                value = blob[metric["Name"]]
                totals[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return totals


def test_batch_sample_gives_the_expected_response_and_executions(
    app: ModuleType,
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the batch sample: 10 records, one poison, one repeating another's image
    event = load_event("classifier_sqs_batch.json")
    expected_response = json.loads(
        (EVENTS_DIR / "classifier_sqs_batch_response.json").read_text(encoding="utf-8")
    )
    capsys.readouterr()

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN nothing is left for SQS to retry
    assert response == expected_response
    # AND one execution per distinct image, named after it, carrying its first message
    assert cloud.executions() == {
        f"{hashlib.sha256(url.encode()).hexdigest()}-1": {
            "message": json.loads(event["Records"][index]["body"]),
            "requested_at": NOW,
            "lease_expires_at": NOW + CLAIM_LEASE_SECONDS,
            "source_queue_arn": cloud.cats_queue_arn,
            "supersedes": "-",
        }
        for url, index in zip(STARTED_URLS, STARTED_RECORDS, strict=True)
    }
    # AND the poison record sits in the cats DLQ, unchanged, with why and its message id
    assert cloud.dead_letters(cloud.cats_dlq_url) == [
        {
            "body": event["Records"][2]["body"],
            "error": "NotJson",
            "reason": "body: Invalid JSON: EOF while parsing a string at line 1 column 109",
            "source_message_id": event["Records"][2]["messageId"],
        }
    ]
    # AND every outcome was counted once
    assert emitted_metrics(capsys.readouterr().out) == {
        "ExecutionStarted": 8,
        "Duplicate": 1,
        "Rejected": 1,
    }


def test_invalid_sample_sends_every_record_to_the_dlq(
    app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN one record per kind of invalid body
    event = load_event("classifier_sqs_invalid.json")

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN none is retried, each is in the DLQ with its error name, nothing is started
    assert response == {"batchItemFailures": []}
    assert [letter["error"] for letter in cloud.dead_letters(cloud.cats_dlq_url)] == [
        "NotJson",
        "InvalidMessage",
        "InvalidMessage",
        "InvalidMessage",
        "InvalidMessage",
        "InvalidMessage",
        "InvalidMessage",
    ]
    assert cloud.executions() == {}


def test_replay_sample_of_a_new_image_starts_its_first_execution(
    app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN the replay sample (attempt 1) for an image with no result item
    event = load_event("classifier_sqs_replay.json")
    url = json.loads(event["Records"][0]["body"])["url"]

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN the image's first execution is started: names follow the result item, not attempt
    assert response == {"batchItemFailures": []}
    assert list(cloud.executions()) == [f"{hashlib.sha256(url.encode()).hexdigest()}-1"]


def test_sam_cli_sample_is_handled_like_a_route_queue_record(
    app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN the event `sam local generate-event sqs receive-message` made for a valid cats
    # message: its queue, MyQueue, is none of this deployment's route queues
    event = load_event("classifier_sqs_sam_cli.json")
    [record] = event["Records"]
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:MyQueue"

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN the message is routed by its validated route and its first execution started,
    # naming the queue it said it came from
    url = json.loads(record["body"])["url"]
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {
        f"{hashlib.sha256(url.encode()).hexdigest()}-1": {
            "message": json.loads(record["body"]),
            "requested_at": NOW,
            "lease_expires_at": NOW + CLAIM_LEASE_SECONDS,
            "source_queue_arn": record["eventSourceARN"],
            "supersedes": "-",
        }
    }


def test_sam_cli_records_sharing_their_ids_keep_their_own_bodies(
    app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN two records made by the SAM CLI, so with the same message id and receipt handle,
    # carrying different images
    [record] = load_event("classifier_sqs_sam_cli.json")["Records"]
    other = json.loads(record["body"]) | {"url": "https://pbs.twimg.com/media/GdPs8lRXhAAd5Ao.jpg"}
    event = {"Records": [record, record | {"body": json.dumps(other)}]}

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN each record started the execution of its own image, with its own message
    assert response == {"batchItemFailures": []}
    assert sorted(started["message"]["url"] for started in cloud.executions().values()) == sorted(
        [json.loads(record["body"])["url"], other["url"]]
    )


def test_sam_cli_default_body_fails_by_name_and_reaches_no_queue(
    app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN the SAM CLI sample with the body the SAM CLI puts there by default
    event = load_event("classifier_sqs_sam_cli.json")
    event["Records"][0]["body"] = "Hello from SQS!"

    # WHEN the handler runs THEN the record fails as UnknownSourceQueue: neither its queue nor
    # its body names a route, so no dead-letter queue may be picked for it
    with pytest.raises(BatchProcessingError) as raised:
        app.lambda_handler(event, lambda_context)
    [(error_type, error, _)] = raised.value.child_exceptions
    assert error_type is UnknownSourceQueue
    assert str(error) == (
        "record from unknown queue arn:aws:sqs:us-east-1:123456789012:MyQueue is no valid "
        "message (NotJson), so nothing names its route"
    )
    assert cloud.dead_letters(cloud.cats_dlq_url) == []
    assert cloud.dead_letters(cloud.dogs_dlq_url) == []
    assert cloud.executions() == {}


def test_lookup_failure_fails_the_invocation(
    app: ModuleType,
    cloud: Cloud,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN ResultsTable throttles every read
    monkeypatch.setattr(app.classifier, "dynamodb", FailingDynamoDB())
    event = load_event("classifier_sqs_batch.json")

    capsys.readouterr()

    # WHEN the handler runs THEN the invocation fails before any record is handled
    with pytest.raises(DoneLookupFailed):
        app.lambda_handler(event, lambda_context)
    assert cloud.executions() == {}
    assert cloud.dead_letters(cloud.cats_dlq_url) == []
    assert emitted_metrics(capsys.readouterr().out) == {"TransientFailure": 1}


def test_cold_start_fails_without_its_environment(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment that forgot STATE_MACHINE_ARN
    monkeypatch.delenv("STATE_MACHINE_ARN")

    # WHEN the module is loaded (a cold start) THEN it refuses to start, naming the variable
    with pytest.raises(InvalidSettings) as raised:
        importlib.reload(app)
    assert str(raised.value) == (
        "invalid ClassifierFunction environment: STATE_MACHINE_ARN: Field required"
    )


def test_cold_start_makes_the_stepfunctions_client_with_bounded_timeouts(app: ModuleType) -> None:
    # GIVEN the handler module cold-started under the template's environment (STANDARD)
    # WHEN its Step Functions client is read
    config = app.classifier.stepfunctions.meta.config

    # THEN it is made with the settings' bounds, not botocore's 60 s connect default, and
    # reads for seconds (StartExecution answers at once), not for the claim lease
    assert (config.connect_timeout, config.read_timeout, config.retries) == (
        3,
        5,
        {"mode": "standard", "total_max_attempts": 3},
    )
