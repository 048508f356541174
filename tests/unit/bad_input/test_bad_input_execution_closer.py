"""Bad input at ExecutionCloserFunction: one row per malformed event, each InvalidEvent.

The closer is invoked asynchronously by EventBridge: an event that is neither a Step Functions
status change of this state machine's execution nor the sweep's scheduled tick fails by name
before anything is read or written (Lambda retries it twice; ExecutionCloserErrorsAlarm
reports it). Events already covered by ``tests/unit/statemachine/test_execution_closer.py``
(an empty object, a tick from another source, a status change without detail) are repeated
here only where the table needs them to be complete.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from execution_closer.models import (
    MAX_EVENT_CAUSE_CHARS,
    MAX_EVENT_INPUT_CHARS,
    StatusChangeEvent,
)
from execution_closer.settings import CloserSettings
from tests.conftest import EVENTS_DIR, FakeLambdaContext

CASES = "bad_input_execution_closer_events.json"
SAMPLE = "eventbridge_execution_failed.json"
STATUSES = "'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED' or 'PENDING_REDRIVE'"


@dataclass(frozen=True)
class EventRow:
    case: str  # key in events/bad_input_execution_closer_events.json
    message: str  # InvalidEvent's message
    # The sample keeps the file small: the test grows detail.input / detail.cause to this many
    # characters.
    input_chars: int | None = None
    cause_chars: int | None = None


EVENT_TABLE = [
    EventRow("null", "event: Input should be a valid dictionary or instance of StatusChangeEvent"),
    EventRow(
        "list_of_events",
        "event: Input should be a valid dictionary or instance of StatusChangeEvent",
    ),
    EventRow(
        "empty_object",
        "detail-type: Field required; source: Field required; detail: Field required",
    ),
    EventRow("status_change_from_another_source", "source: Input should be 'aws.states'"),
    EventRow("scheduled_tick_from_another_source", "source: Input should be 'aws.events'"),
    EventRow(
        "other_detail_type",
        "detail-type: Input should be 'Step Functions Execution Status Change'",
    ),
    EventRow("missing_detail", "detail: Field required"),
    EventRow(
        "detail_not_an_object",
        "detail: Input should be a valid dictionary or instance of StatusChangeDetail",
    ),
    EventRow("unknown_status", f"detail.status: Input should be {STATUSES}"),
    EventRow("missing_execution_arn", "detail.executionArn: Field required"),
    EventRow(
        "execution_of_another_state_machine",
        "detail: Value error, executionArn is not an execution of stateMachineArn",
    ),
    EventRow("input_not_a_string", "detail.input: Input should be a valid string"),
    EventRow(
        "error_longer_than_step_functions_allows",
        "detail.error: String should have at most 256 characters",
    ),
    EventRow(
        "huge_input",
        f"detail.input: String should have at most {MAX_EVENT_INPUT_CHARS} characters",
        input_chars=MAX_EVENT_INPUT_CHARS + 1,
    ),
    EventRow("missing_state_machine_arn", "detail.stateMachineArn: Field required"),
    EventRow("empty_execution_arn", "detail.executionArn: String should have at least 1 character"),
    EventRow("status_not_a_string", f"detail.status: Input should be {STATUSES}"),
    EventRow(
        "huge_cause",
        f"detail.cause: String should have at most {MAX_EVENT_CAUSE_CHARS} characters",
        cause_chars=MAX_EVENT_CAUSE_CHARS + 1,
    ),
]


class UntouchableCloser:
    """Stands in for the closer: a malformed event must never reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a malformed event reached the closer ({name})")


@pytest.fixture
def app(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """execution_closer.app cold-started for the sample's state machine, its closer untouchable."""
    sample = json.loads((EVENTS_DIR / SAMPLE).read_text(encoding="utf-8"))
    environment = {
        "RESULTS_TABLE": "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD",
        "OPEN_CLAIMS_INDEX": "OpenClaims",
        "STATE_MACHINE_ARN": sample["detail"]["stateMachineArn"],
        "WORKFLOW_DLQ_URL": (
            "https://sqs.us-east-1.amazonaws.com/123456789012/"
            "tweetlens-dev-WorkflowDeadLetterQueue-Q1w2E3r4T5y6"
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        module = importlib.import_module("execution_closer.app")
        monkeypatch.setattr(module, "settings", CloserSettings.model_validate(environment))
        monkeypatch.setattr(module, "closer", UntouchableCloser())
        yield module


def load_case(row: EventRow) -> Any:
    event = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))[row.case]
    if row.input_chars is not None:
        event["detail"]["input"] = "x" * row.input_chars
    if row.cause_chars is not None:
        event["detail"]["cause"] = "x" * row.cause_chars
    return event


def test_table_covers_every_sample_event() -> None:
    # GIVEN the sample events WHEN compared with the table THEN each has exactly one row
    cases = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))
    assert [row.case for row in EVENT_TABLE] == list(cases)


def test_the_sample_status_change_itself_is_valid() -> None:
    # GIVEN the sample status-change event most bad cases are a variation of
    event = json.loads((EVENTS_DIR / SAMPLE).read_text(encoding="utf-8"))

    # WHEN it is validated THEN it is accepted as is, so each row fails for its own reason
    assert StatusChangeEvent.model_validate(event).detail.status == "FAILED"


@pytest.mark.no_application_metrics
@pytest.mark.parametrize("row", EVENT_TABLE, ids=[row.case for row in EVENT_TABLE])
def test_malformed_event_is_invalid_event(row: EventRow, app: ModuleType) -> None:
    # GIVEN an event that is no status change of this state machine and no sweep tick
    event = load_case(row)

    # WHEN the handler receives it
    # THEN it fails with InvalidEvent naming each field and rule, never the values, and the
    # closer was never asked to close anything
    with pytest.raises(app.InvalidEvent) as raised:
        app.lambda_handler(event, FakeLambdaContext())
    assert str(raised.value) == row.message
