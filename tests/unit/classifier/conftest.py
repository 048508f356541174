"""Fixtures for ClassifierFunction: moto-backed SQS, DynamoDB and Step Functions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools import Metrics
from moto import mock_aws

from classifier.observability import metrics as function_metrics
from tests.unit.classifier.classifier_testkit import (
    CATS_DLQ,
    CATS_QUEUE,
    DOGS_DLQ,
    DOGS_QUEUE,
    REGION,
    RESULTS_TABLE,
    STATE_MACHINE,
    Cloud,
)


@pytest.fixture(autouse=True)
def _environment(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "classifier")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """The function's Metrics, empty before and after the test (Powertools shares its store)."""
    function_metrics.clear_metrics()
    yield function_metrics
    function_metrics.clear_metrics()


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue_arns: dict[str, str] = {}
        queue_urls: dict[str, str] = {}
        for name in (CATS_QUEUE, CATS_DLQ, DOGS_QUEUE, DOGS_DLQ):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_urls[name] = url
            queue_arns[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=RESULTS_TABLE,
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
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        # moto keeps executions RUNNING without interpreting them; a Pass state is enough.
        state_machine_arn = stepfunctions.create_state_machine(
            name=STATE_MACHINE,
            definition=json.dumps(
                {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
            ),
            roleArn="arn:aws:iam::123456789012:role/tweetlens-dev-StateMachineRole",
        )["stateMachineArn"]
        yield Cloud(
            sqs=sqs,
            stepfunctions=stepfunctions,
            dynamodb=dynamodb,
            cats_queue_arn=queue_arns[CATS_QUEUE],
            cats_dlq_url=queue_urls[CATS_DLQ],
            dogs_queue_arn=queue_arns[DOGS_QUEUE],
            dogs_dlq_url=queue_urls[DOGS_DLQ],
            state_machine_arn=state_machine_arn,
        )
