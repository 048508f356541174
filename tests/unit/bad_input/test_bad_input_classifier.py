"""Bad input at ClassifierFunction: one row per malformed SQS body or event, and where it ends.

Bodies already covered by ``tests/unit/classifier`` (not JSON, a JSON string, missing url,
wrong hashtags type, http, user:password credentials, 100 KB of text) are not repeated here.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from classifier.logic import InvalidEvent
from classifier.observability import metrics as function_metrics
from tests.unit.classifier.classifier_testkit import (
    CLAIM_LEASE_SECONDS,
    EVENTS_DIR,
    Cloud,
    load_event,
)

NOW = 1_732_700_000
BODIES = "bad_input_classifier_sqs_bodies.json"
HOSTS = "bad_input_classifier_sqs_hosts.json"
EVENTS = "bad_input_classifier_events.json"


@dataclass(frozen=True)
class BodyRow:
    """A record body the classifier must reject to its route DLQ, with the exact attributes."""

    case: str
    record: int  # index in events/bad_input_classifier_sqs_bodies.json
    error: str
    reason: str


@dataclass(frozen=True)
class EventRow:
    """An invocation event that is not an SQS batch, and the exact InvalidEvent message."""

    case: str
    message: str


BODY_TABLE = [
    BodyRow(
        "empty body",
        0,
        "NotJson",
        "body: Invalid JSON: EOF while parsing a value at line 1 column 0",
    ),
    BodyRow("JSON null", 1, "InvalidMessage", "body: Input should be an object"),
    BodyRow(
        "lone surrogate escape",
        2,
        "NotJson",
        "body: Invalid JSON: unexpected end of hex escape at line 1 column 75",
    ),
    BodyRow("url null", 3, "InvalidMessage", "url: Input should be a valid string"),
    BodyRow("url without host", 4, "InvalidMessage", "url: Value error, url has no host"),
    BodyRow(
        "url with user, no password",
        5,
        "InvalidMessage",
        "url: Value error, url must not carry credentials",
    ),
    BodyRow("file: url", 6, "InvalidMessage", "url: Value error, url must use https"),
    BodyRow(
        "url of 2.1 KB",
        7,
        "InvalidMessage",
        "url: String should have at most 2048 characters",
    ),
    BodyRow("post_id a number", 8, "InvalidMessage", "post_id: Input should be a valid string"),
    BodyRow(
        "attempt a word",
        9,
        "InvalidMessage",
        "attempt: Input should be a valid integer, unable to parse string as an integer",
    ),
    BodyRow(
        "attempt over 99",
        10,
        "InvalidMessage",
        "attempt: Input should be less than or equal to 99",
    ),
    BodyRow(
        "route not a route name",
        11,
        "InvalidMessage",
        "route: String should match pattern '^[a-z0-9][a-z0-9-]{0,39}$'",
    ),
    BodyRow("unknown field", 12, "InvalidMessage", "priority: Extra inputs are not permitted"),
]

# URLs the message contract accepts (https, a host, no credentials) but the fetch function's
# allow-list refuses: the classifier starts their execution, and the state machine ends it in
# the workflow DLQ with BlockedUrl (tests/unit/bad_input/test_bad_input_state_machine.py).
HOST_CASES = [
    "metadata IP literal",
    "decimal IP literal",
    "IPv4-mapped IPv6 literal",
    "look-alike suffix host",
    "IDN homograph host",
    "punycode homograph host",
    "allowed host, other port",
    "host not on the allow-list",
]

EVENT_TABLE = [
    EventRow("no_records", "not an SQS batch event: Records: Field required"),
    EventRow(
        "records_not_a_list",
        "not an SQS batch event: Records: Input should be a valid list",
    ),
    EventRow("record_without_body", "not an SQS batch event: Records.0.body: Field required"),
    EventRow(
        "record_without_event_source_arn",
        "not an SQS batch event: Records.0.eventSourceARN: Field required",
    ),
    EventRow(
        "record_without_message_id",
        "not an SQS batch event: Records.1.messageId: Field required",
    ),
    EventRow(
        "not_an_object",
        "not an SQS batch event: event: Input should be a valid dictionary or instance of "
        "RouteQueueEvent",
    ),
]


@pytest.fixture(autouse=True)
def _environment(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "classifier")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")


@pytest.fixture
def app(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """classifier.app cold-started in the emulated account, with a fixed clock."""
    for name, value in cloud.environment().items():
        monkeypatch.setenv(name, value)
    function_metrics.clear_metrics()
    module = (
        importlib.reload(sys.modules["classifier.app"])
        if "classifier.app" in sys.modules
        else importlib.import_module("classifier.app")
    )
    monkeypatch.setattr(module.classifier, "clock", lambda: NOW + 0.75)
    yield module
    function_metrics.clear_metrics()


def one_record(name: str, index: int) -> dict[str, Any]:
    """An SQS event holding only the chosen record of a sample batch."""
    return {"Records": [load_event(name)["Records"][index]]}


def emitted(stdout: str) -> dict[str, float]:
    """Business metrics in the EMF lines Powertools printed (cold start left out)."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] != "ColdStart":
                    value = blob[metric["Name"]]
                    totals[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return totals


def test_body_table_covers_every_record_of_the_sample() -> None:
    # GIVEN the bad bodies sample WHEN it is compared with the table THEN each record has a row
    assert [row.record for row in BODY_TABLE] == list(range(len(load_event(BODIES)["Records"])))
    assert len(HOST_CASES) == len(load_event(HOSTS)["Records"])


@pytest.mark.parametrize("row", BODY_TABLE, ids=[row.case for row in BODY_TABLE])
def test_bad_body_is_deleted_and_dead_lettered_with_its_reason(
    row: BodyRow,
    app: ModuleType,
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a batch whose only record carries the malformed body
    event = one_record(BODIES, row.record)
    capsys.readouterr()

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN the record is not retried (deleted from the batch), nothing is started
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {}
    # AND its route DLQ holds the body unchanged with the named error, the reason and the
    # rejected message's id
    assert cloud.dead_letters(cloud.cats_dlq_url) == [
        {
            "body": event["Records"][0]["body"],
            "error": row.error,
            "reason": row.reason,
            "source_message_id": event["Records"][0]["messageId"],
        }
    ]
    assert cloud.dead_letters(cloud.dogs_dlq_url) == []
    assert emitted(capsys.readouterr().out) == {"Rejected": 1}


@pytest.mark.parametrize("index", range(len(HOST_CASES)), ids=HOST_CASES)
def test_url_refused_only_by_the_allow_list_starts_its_execution(
    index: int, app: ModuleType, cloud: Cloud, lambda_context: LambdaContext
) -> None:
    # GIVEN a valid message whose URL points at a host the fetch function will refuse
    event = one_record(HOSTS, index)
    body = event["Records"][0]["body"]
    message = json.loads(body)

    # WHEN the handler runs
    response = app.lambda_handler(event, lambda_context)

    # THEN the classifier, which does not know the allow-list, starts the execution with it
    assert response == {"batchItemFailures": []}
    assert cloud.executions() == {
        f"{hashlib.sha256(message['url'].encode()).hexdigest()}-1": {
            "message": message,
            "requested_at": NOW,
            "lease_expires_at": NOW + CLAIM_LEASE_SECONDS,
            "source_queue_arn": cloud.cats_queue_arn,
            "supersedes": "-",
        }
    }
    assert cloud.dead_letters(cloud.cats_dlq_url) == []


@pytest.mark.parametrize("row", EVENT_TABLE, ids=[row.case for row in EVENT_TABLE])
def test_event_that_is_not_an_sqs_batch_fails_the_invocation_by_name(
    row: EventRow,
    app: ModuleType,
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an invocation event that no SQS event source mapping would send
    event = json.loads((EVENTS_DIR / EVENTS).read_text(encoding="utf-8"))[row.case]
    capsys.readouterr()

    # WHEN the handler runs THEN it fails as a whole with InvalidEvent naming the problem
    with pytest.raises(InvalidEvent) as raised:
        app.lambda_handler(event, lambda_context)
    assert str(raised.value) == row.message
    # AND no record was touched: nothing started, nothing dead-lettered
    assert cloud.executions() == {}
    assert cloud.dead_letters(cloud.cats_dlq_url) == []
    assert emitted(capsys.readouterr().out) == {"ConfigurationError": 1}
