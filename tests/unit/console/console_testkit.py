"""A stack in moto (in process, no sockets) with the resources the console reads, and helpers.

The results table is created from template.yaml's own definition (keys, ByLabel index), the
queues with the template's redrive shape; items and letters are written in the shapes of
docs/architecture.md, with attacker-controlled text where a post's text would be.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.statemachine.harness import load_template
from tweetlens.console import ConsoleData, create_app
from tweetlens.localcloud.models import InvocationRecord
from tweetlens.stack import DeployedStack

REGION = "us-east-1"
PORT = 8800
ORIGIN = f"http://127.0.0.1:{PORT}"
ACCOUNT = "123456789012"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:classify-image"
HOSTILE = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"


@functools.cache
def results_table_properties() -> dict[str, Any]:
    """ResultsTable as template.yaml defines it (parsed once: every test builds one)."""
    properties: dict[str, Any] = load_template()["Resources"]["ResultsTable"]["Properties"]
    return properties


def resources_in_moto(session: Any) -> dict[str, str]:
    """Create the stack's readable resources in the active moto mock; logical id → physical."""
    table = results_table_properties()
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName="results",
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )
    session.client("s3").create_bucket(Bucket="images")
    sqs = session.client("sqs")
    urls: dict[str, str] = {}
    for route in ("Cats", "Dogs"):
        dlq = sqs.create_queue(QueueName=f"{route.lower()}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        urls[f"{route}Queue"] = sqs.create_queue(
            QueueName=route.lower(), Attributes={"RedrivePolicy": policy}
        )["QueueUrl"]
        urls[f"{route}DeadLetterQueue"] = dlq
    urls["WorkflowDeadLetterQueue"] = sqs.create_queue(QueueName="workflow-dlq")["QueueUrl"]
    machine = session.client("stepfunctions").create_state_machine(
        name="classify-image",
        definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        ),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
    )["stateMachineArn"]
    return {
        "ResultsTable": "results",
        "ImagesBucket": "images",
        "ClassifyImageStateMachine": machine,
        **urls,
    }


def image_bytes(extension: str = ".png", size: tuple[int, int] = (900, 600)) -> bytes:
    """A real picture (a gradient) in ``extension``'s format."""
    width, height = size
    row = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.dstack([np.tile(row, (height, 1))] * 3)
    ok, encoded = cv2.imencode(extension, pixels)
    assert ok
    return bytes(encoded)


@dataclass
class Stack:
    """The moto stack as the console sees it, plus writers of what the pipeline would write."""

    deployed: DeployedStack

    def client(self, service: str) -> Any:
        return self.deployed.client(service)

    def put_result(
        self,
        url: str,
        *,
        labels: list[tuple[str, float]] = (),  # type: ignore[assignment]
        status: str = "DONE",
        text: str = "a cat #cat",
        hashtags: tuple[str, ...] = ("cat",),
        post_id: str = "1879000016202698239",
        route: str = "cats",
        image: bytes | None = None,
        error: str = "",
    ) -> str:
        """A result item, its label items and its image, as the state machine stores them."""
        key = f"images/{abs(hash(url)):x}.png"
        item: dict[str, Any] = {
            "pk": {"S": url},
            "sk": {"S": "RESULT"},
            "status": {"S": status},
            "post_id": {"S": post_id},
            "text": {"S": text},
            "hashtags": {"L": [{"S": tag} for tag in hashtags]},
            "route": {"S": route},
            "labels": {
                "L": [
                    {"M": {"name": {"S": name}, "confidence": {"N": str(confidence)}}}
                    for name, confidence in labels
                ]
            },
            "execution": {"S": f"{STATE_MACHINE_ARN}:exec-{abs(hash(url)):x}-0"},
        }
        if image is not None:
            item["image_key"] = {"S": key}
            self.client("s3").put_object(Bucket="images", Key=key, Body=image)
        if error:
            item["error"] = {"S": error}
        dynamodb = self.client("dynamodb")
        dynamodb.put_item(TableName="results", Item=item)
        for name, confidence in labels:
            dynamodb.put_item(
                TableName="results",
                Item={
                    "pk": {"S": url},
                    "sk": {"S": f"LABEL#{name}"},
                    "label": {"S": name},
                    "confidence": {"N": str(confidence)},
                    "post_id": {"S": post_id},
                    "route": {"S": route},
                },
            )
        return key

    def send(self, queue: str, body: str, attributes: dict[str, str] | None = None) -> str:
        message_attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (attributes or {}).items()
        }
        return str(
            self.client("sqs").send_message(
                QueueUrl=self.deployed.resources[queue],
                MessageBody=body,
                MessageAttributes=message_attributes,
            )["MessageId"]
        )

    def depth(self, queue: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.deployed.resources[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def photo_message(
    url: str, *, route: str = "cats", attempt: int = 0, text: str = ""
) -> dict[str, Any]:
    return {
        "url": url,
        "post_id": "1879000016202698239",
        "media_key": "3_1879000016202698239",
        "text": text or "my #cat",
        "hashtags": ["cat"],
        "route": route,
        "attempt": attempt,
    }


def workflow_letter(url: str, error: str, message: str, *, text: str = "") -> str:
    """A failed execution's workflow dead letter, as the state machine writes it."""
    cause = json.dumps({"errorType": error, "errorMessage": message, "stackTrace": ["..."]})
    return json.dumps(
        {
            "message": photo_message(url, text=text),
            "error": {"Error": error, "Cause": cause},
            "execution": f"{STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:e-0",
            "failed_state": "Fetch Image",
        }
    )


def console_app(data: ConsoleData) -> Flask:
    app = create_app(data, port=PORT)
    app.testing = True
    return app


class HostClient(FlaskClient):
    """A test client whose every request names ``host`` (the address a browser was given)."""

    host = f"127.0.0.1:{PORT}"

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", f"http://{self.host}")
        return super().open(*args, **kwargs)


def client_of(app: Flask, host: str = f"127.0.0.1:{PORT}") -> FlaskClient:
    app.test_client_class = HostClient
    client = app.test_client()
    assert isinstance(client, HostClient)
    client.host = host
    return client


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/dead-letters") -> str:
    """The session's token, read from a form of ``page`` as a browser would."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    found = _CSRF.search(response.text)
    assert found, "no form with a CSRF token on the page"
    return found.group(1)


class FakeCloud:
    """A local cloud in this process as CloudActivity sees it: resources and invocations."""

    def __init__(self) -> None:
        self.resources = {"ProducerFunction": "producer", "ClassifierFunction": "classifier"}
        self.records: list[InvocationRecord] = []

    def invocations(self) -> list[InvocationRecord]:
        return list(self.records)

    def log(self, function_logical_id: str, *entries: dict[str, Any]) -> None:
        number = len(self.records)
        self.records.append(
            InvocationRecord(
                function_name=self.resources[function_logical_id],
                request_id=f"request-{number}",
                report="REPORT",
                error_type=None,
                error_message=None,
                logs="START\n" + "\n".join(json.dumps(entry) for entry in entries) + "\nEND\n",
                cold_start=False,
                started_at=float(number),
                ended_at=float(number),
            )
        )
