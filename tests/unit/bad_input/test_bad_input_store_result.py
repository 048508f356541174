"""Bad input at StoreResultFunction: one row per malformed task input, each InvalidStoreRequest.

Only the state machine invokes it, with a payload the ASL builds ("Store Result" in
statemachine/classify_image.asl.json); a malformed one is a wiring bug. It fails by name
before DynamoDB is touched, the workflow does not retry it, and the execution closer
dead-letters the message (``tests/unit/statemachine``).
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from store_result.errors import InvalidStoreRequest
from store_result.models import StoreRequest
from tests.conftest import EVENTS_DIR, FakeLambdaContext

CASES = "bad_input_store_result.json"
EXECUTION_PATTERN = r"'^arn:aws[a-z-]*:states:[^\s]+:(execution|express):[^\s]+$'"


@dataclass(frozen=True)
class InputRow:
    case: str  # key in events/bad_input_store_result.json
    message: str  # InvalidStoreRequest's message


INPUT_TABLE = [
    InputRow("null", "input: Input should be a valid dictionary or instance of StoreRequest"),
    InputRow("list", "input: Input should be a valid dictionary or instance of StoreRequest"),
    InputRow(
        "empty_object",
        "message: Field required; execution: Field required; image_key: Field required; "
        "labels: Field required; classified_at: Field required",
    ),
    InputRow(
        "state_input_passed_whole",
        "execution: Field required; image_key: Field required; labels: Field required; "
        "classified_at: Field required; image: Extra inputs are not permitted; "
        "detected: Extra inputs are not permitted",
    ),
    InputRow("message_without_url", "message.url: Field required"),
    InputRow("message_with_http_url", "message.url: Value error, url must use https"),
    InputRow(
        "execution_is_the_state_machine",
        f"execution: String should match pattern {EXECUTION_PATTERN}",
    ),
    InputRow("image_key_empty", "image_key: String should have at least 1 character"),
    InputRow("labels_as_detect_labels_answered", "labels: Input should be a valid list"),
    InputRow("label_without_name", "labels.0.Name: Field required"),
    InputRow(
        "label_confidence_over_100",
        "labels.0.Confidence: Input should be less than or equal to 100",
    ),
    InputRow(
        "too_many_labels",
        "labels: List should have at most 50 items after validation, not 51",
    ),
    InputRow("classified_at_missing", "classified_at: Field required"),
]


def refuse_dynamodb() -> Any:
    raise AssertionError("a malformed task input must not reach DynamoDB")


@pytest.fixture
def app(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """store_result.app cold-started with its table name, and no DynamoDB to reach."""
    monkeypatch.setenv("RESULTS_TABLE", "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
    module = importlib.import_module("store_result.app")
    # Imported once per session: an earlier test's import keeps its own table name in SETTINGS,
    # so this one's is set here, and undone after the test for the next importer.
    monkeypatch.setattr(module, "SETTINGS", module.load_settings(os.environ))
    monkeypatch.setattr(module, "dynamodb_client", refuse_dynamodb)
    return module


def test_table_covers_every_sample_input() -> None:
    # GIVEN the sample inputs WHEN compared with the table THEN each has exactly one row
    cases = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))
    assert [row.case for row in INPUT_TABLE] == list(cases)


def test_the_input_the_cases_vary_is_itself_valid() -> None:
    # GIVEN the well-formed input the "list" case wraps, which the other cases vary
    [valid] = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))["list"]

    # WHEN it is validated THEN it is accepted, so each row fails for its own reason
    assert StoreRequest.model_validate(valid).labels[0].Name == "Cat"


@pytest.mark.no_application_metrics
@pytest.mark.parametrize("row", INPUT_TABLE, ids=[row.case for row in INPUT_TABLE])
def test_malformed_task_input_is_invalid_store_request(
    row: InputRow, app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a task input of the wrong shape
    event = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))[row.case]
    capsys.readouterr()

    # WHEN the handler runs
    # THEN it raises InvalidStoreRequest naming each field and rule, never the values
    with pytest.raises(InvalidStoreRequest) as raised:
        app.lambda_handler(event, FakeLambdaContext())
    assert str(raised.value) == row.message
    # AND nothing was stored or counted as classified
    assert "ImageClassified" not in capsys.readouterr().out
