"""Shared pieces of the ClassifierFunction tests: emulated resources, sample events, context.

A module with its own name rather than conftest, imported by its full dotted path, so it
cannot clash with the suite's other conftest.py files or with the ``classifier`` package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from classifier.models import RouteQueueRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"
REGION = "us-east-1"
# Names as CloudFormation generates them; the sample events' eventSourceARN uses the first.
CATS_QUEUE = "tweetlens-dev-CatsQueue-Xb8k2LmQ9pZr"
CATS_DLQ = "tweetlens-dev-CatsDeadLetterQueue-Hq3Vt7Wn1Ks"
DOGS_QUEUE = "tweetlens-dev-DogsQueue-Pf5Rj2Yc8Dm"
DOGS_DLQ = "tweetlens-dev-DogsDeadLetterQueue-Lw6Bn4Tg0Ze"
RESULTS_TABLE = "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD"
STATE_MACHINE = "ClassifyImageStateMachine-a1B2c3D4e5F6"
CLAIM_LEASE_SECONDS = 900


@dataclass(frozen=True)
class Cloud:
    """The emulated resources ClassifierFunction touches, and clients to inspect them."""

    sqs: SQSClient
    stepfunctions: SFNClient
    dynamodb: DynamoDBClient
    cats_queue_arn: str
    cats_dlq_url: str
    dogs_queue_arn: str
    dogs_dlq_url: str
    state_machine_arn: str

    def environment(self) -> dict[str, str]:
        """ClassifierFunction's environment as the template sets it."""
        return {
            "RESULTS_TABLE": RESULTS_TABLE,
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "ROUTE_DLQ_URLS": json.dumps(
                {self.cats_queue_arn: self.cats_dlq_url, self.dogs_queue_arn: self.dogs_dlq_url}
            ),
            "ROUTE_DLQ_URLS_BY_ROUTE": json.dumps(
                {"cats": self.cats_dlq_url, "dogs": self.dogs_dlq_url}
            ),
            "CLAIM_LEASE_SECONDS": str(CLAIM_LEASE_SECONDS),
            "WORKFLOW_TYPE": "STANDARD",
            # No start limit unless a test sets a rate: the tests that limit count every wait.
            "DETECT_LABELS_RATE": "0",
            "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
        }

    def put_result(
        self,
        url: str,
        status: str,
        execution: str | None = None,
        *,
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        """Write a result item as the state machine would, optionally naming its owner, the
        route message it claimed for (JSON) and the error its claim was closed with."""
        item = {"pk": {"S": url}, "sk": {"S": "RESULT"}, "status": {"S": status}}
        optional = {"execution": execution, "error": error, "message": message}
        item |= {name: {"S": value} for name, value in optional.items() if value is not None}
        self.dynamodb.put_item(TableName=RESULTS_TABLE, Item=item)

    def executions(self) -> dict[str, Any]:
        """Every execution of the state machine: name -> decoded input."""
        listed = self.stepfunctions.list_executions(stateMachineArn=self.state_machine_arn)
        return {
            execution["name"]: json.loads(
                self.stepfunctions.describe_execution(executionArn=execution["executionArn"])[
                    "input"
                ]
            )
            for execution in listed["executions"]
        }

    def dead_letters(self, queue_url: str) -> list[dict[str, str]]:
        """Drain a dead-letter queue: body plus String attributes of each message."""
        found: list[dict[str, str]] = []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            messages = received.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                attributes = message.get("MessageAttributes", {})
                found.append(
                    {"body": message["Body"]}
                    | {name: value["StringValue"] for name, value in attributes.items()}
                )
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, each record checked against the SQS record model."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    for record in event.get("Records", []):
        RouteQueueRecord.model_validate(record)
    return event


def client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    """A botocore ClientError shaped like the one the service would raise."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "RequestId": "6b3a2c1e-7d8f-4e5a-9b0c-1d2e3f4a5b6c",
                "HostId": "",
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        operation,
    )


def no_sleep(seconds: float) -> None:
    """A sleep for code paths that must not wait at all."""
    raise AssertionError(f"unexpected sleep of {seconds} s")


class MarkSentRefused:
    """moto's DynamoDB, except that the write marking a dead letter SENT is refused.

    ``LetterMarkers.mark_sent`` is the one UpdateItem setting ``:sent``; every other call
    (the PENDING mark, claims, results) reaches moto."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.refused = 0

    def update_item(self, **kwargs: Any) -> Any:
        if ":sent" in kwargs.get("ExpressionAttributeValues", {}):
            self.refused += 1
            raise client_error("ProvisionedThroughputExceededException", "slow down", "UpdateItem")
        return self._real.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
