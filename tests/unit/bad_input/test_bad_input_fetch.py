"""Bad input at FetchImageFunction: one row per malformed task input, each InvalidFetchRequest.

Inputs already covered by ``tests/unit/fetch_image/test_fetch_handler.py`` (missing url,
missing bucket, bad bucket name, url a number, empty url, an extra field, a JSON list) are not
repeated here. Where the error ends: the state machine catches InvalidFetchRequest as
permanent and dead-letters the message (``test_permanent_fetch_error_is_dead_lettered...``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fetch_image.errors import InvalidFetchRequest
from fetch_image.observability import metrics
from fetch_image.settings import FetchSettings
from tests.conftest import EVENTS_DIR

IMAGES_BUCKET = "tweetlens-images-example"
CASES = "bad_input_fetch_image.json"


@dataclass(frozen=True)
class InputRow:
    case: str  # key in events/bad_input_fetch_image.json
    message: str


INPUT_TABLE = [
    InputRow(
        "empty_object",
        "invalid fetch request: url: Field required; bucket: Field required",
    ),
    InputRow(
        "null",
        "invalid fetch request: input: Input should be a valid dictionary or instance of "
        "FetchRequest",
    ),
    InputRow(
        "string",
        "invalid fetch request: input: Input should be a valid dictionary or instance of "
        "FetchRequest",
    ),
    InputRow("url_null", "invalid fetch request: url: Input should be a valid string"),
    InputRow("url_list", "invalid fetch request: url: Input should be a valid string"),
    InputRow("bucket_number", "invalid fetch request: bucket: Input should be a valid string"),
    InputRow(
        "url_too_long",
        "invalid fetch request: url: String should have at most 2048 characters",
    ),
    InputRow(
        "state_input_passed_whole",
        "invalid fetch request: url: Field required; message: Extra inputs are not permitted",
    ),
    InputRow(
        "everything_wrong",
        "invalid fetch request: url: Input should be a valid string; "
        "bucket: Input should be a valid string; size: Extra inputs are not permitted",
    ),
]


def refuse_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a malformed task input must not reach DNS or the image host")


@pytest.fixture
def app(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """fetch_image.app with DNS and HTTPS refused outright and S3 in moto."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
    from fetch_image import app as module

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=IMAGES_BUCKET)
        monkeypatch.setattr(metrics, "namespace", "tweetlens")
        monkeypatch.setattr(module, "SETTINGS", FetchSettings.from_environ({}))
        monkeypatch.setattr(module, "RESOLVER", refuse_network)
        monkeypatch.setattr(module, "OPENER", refuse_network)
        monkeypatch.setattr(module, "s3_client", lambda: s3)
        metrics.clear_metrics()
        yield module
        assert s3.list_objects_v2(Bucket=IMAGES_BUCKET)["KeyCount"] == 0
        metrics.clear_metrics()


def test_table_covers_every_sample_input() -> None:
    # GIVEN the sample inputs WHEN compared with the table THEN each has exactly one row
    cases = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))
    assert [row.case for row in INPUT_TABLE] == list(cases)


@pytest.mark.parametrize("row", INPUT_TABLE, ids=[row.case for row in INPUT_TABLE])
def test_malformed_task_input_is_invalid_fetch_request(
    row: InputRow,
    app: ModuleType,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a task input of the wrong shape
    event = json.loads((EVENTS_DIR / CASES).read_text(encoding="utf-8"))[row.case]
    capsys.readouterr()

    # WHEN the handler runs
    # THEN it raises InvalidFetchRequest naming each field and rule, never the values
    with pytest.raises(InvalidFetchRequest) as raised:
        app.lambda_handler(event, lambda_context)
    assert str(raised.value) == row.message
    # AND the failure is counted under its error name
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [(blob["error"], blob["ImageFetchFailed"]) for blob in emitted] == [
        ("InvalidFetchRequest", [1.0])
    ]
