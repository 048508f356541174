"""Fixtures for the producer's unit tests: moto in-process and a cold-started handler."""

from __future__ import annotations

import importlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.producer.producer_testkit import EVENTS, REGION, ROUTES, TABLE, Aws

# Powertools reads these when the producer's observability module is first imported.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "producer")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Route queues, the producer's dead-letter queue and the checkpoints table in moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        queue_urls = {
            route: sqs.create_queue(QueueName=f"tweetlens-test-{route}")["QueueUrl"]
            for route in ("cats", "dogs")
        }
        dead_letter_queue_url = sqs.create_queue(QueueName="tweetlens-test-producer-dlq")[
            "QueueUrl"
        ]
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Aws(
            sqs=sqs,
            dynamodb=dynamodb,
            queue_urls=queue_urls,
            dead_letter_queue_url=dead_letter_queue_url,
        )


@pytest.fixture
def aws_calls(aws: Aws) -> Iterator[list[str]]:
    """``service:Operation`` of every AWS call made by clients created during the test.

    Hooked on a fresh default boto3 session, so the handler's cold start picks it up; set up
    after ``aws``, as moto's start drops the default session.
    """
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}:{model.name}")

    boto3.DEFAULT_SESSION.events.register("before-call", record)
    yield calls
    boto3.DEFAULT_SESSION = previous


# The characters SQS accepts in a message body; moto accepts any.
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@pytest.fixture
def sqs_refuses_what_sqs_refuses(aws: Aws) -> Iterator[None]:
    """SendMessageBatch of clients created during the test refuses, entry by entry, a body with
    a character SQS does not accept, as SQS does (``InvalidMessageContents``, ``SenderFault``
    true) and moto does not. Each batch needs one acceptable entry, for moto to answer. Hooked
    like ``aws_calls``."""
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None

    def take_out(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params["Entries"]
        context["refused"] = [e for e in entries if _SQS_REFUSED.search(e["MessageBody"])]
        params["Entries"] = [e for e in entries if e not in context["refused"]]
        assert params["Entries"], "the emulation needs one acceptable entry per batch"

    def report(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", []).extend(
            {
                "Id": entry["Id"],
                "SenderFault": True,
                "Code": "InvalidMessageContents",
                "Message": f"Invalid binary character '#x{ord(found.group()):X}' was found in "
                "the message body",
            }
            for entry in context.get("refused", [])
            if (found := _SQS_REFUSED.search(entry["MessageBody"]))
        )

    boto3.DEFAULT_SESSION.events.register("provide-client-params.sqs.SendMessageBatch", take_out)
    boto3.DEFAULT_SESSION.events.register("after-call.sqs.SendMessageBatch", report)
    yield
    boto3.DEFAULT_SESSION = previous


@pytest.fixture
def replay_env(aws: Aws) -> Callable[[str], dict[str, str]]:
    """The producer's environment for replaying one events/ recording."""

    def build(recording: str) -> dict[str, str]:
        return {
            "HASHTAG_ROUTES": ROUTES,
            "ROUTE_QUEUE_URLS": json.dumps(aws.queue_urls),
            "CHECKPOINTS_TABLE": TABLE,
            "PRODUCER_DLQ_URL": aws.dead_letter_queue_url,
            "POST_SOURCE": "replay",
            "REPLAY_URI": str(EVENTS / recording),
            "BEARER_TOKEN_STORE": "secretsmanager",
            "BEARER_TOKEN_NAME": "tweetlens/x-bearer-token",
            "MAX_RESULTS_PER_PAGE": "10",
        }

    return build


@pytest.fixture
def load_app(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], ModuleType]:
    """Cold-start the handler module with the given environment (inside the moto mock)."""

    def cold_start(environment: dict[str, str]) -> ModuleType:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        module = importlib.import_module("producer.app")
        return importlib.reload(module)

    return cold_start


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the Powertools logger writes, one JSON document per line."""
    from producer.observability import logger

    handler = logger.registered_handler
    assert hasattr(handler, "setStream")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
