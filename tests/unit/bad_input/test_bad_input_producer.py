"""Bad input at ProducerFunction: malformed X API pages (replayed) and invocation events.

Already covered in ``tests/unit/producer``: missing ``includes`` (posts skipped with a
warning), 429, 401, an unknown next_token and an SQS event instead of a scheduled one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from producer.replay import RecordingError, load_recording
from producer.source import XApiError
from tests.unit.producer.producer_testkit import (
    EVENTS,
    Aws,
    FakeLambdaContext,
    emitted_metrics,
    load_event,
)

PAGES = "bad_input_x_api_pages.json"
SCHEDULED_EVENTS = "bad_input_producer_events.json"
RECORDINGS = "bad_input_replay_recordings.json"
GOOD_PHOTO = {
    "url": "https://pbs.twimg.com/media/GdYGk2LWoAAq7Zn.jpg",
    "post_id": "1861742215108022271",
    "media_key": "3_1861742101555539968",
    "text": "Window seat, as always #cat https://t.co/Vb4nKq8ZsP",
    "hashtags": ["cat"],
    "route": "cats",
    "attempt": 0,
}
NEWEST_POST = "1861742398390657025"


@dataclass(frozen=True)
class SkipRow:
    """A page whose bad post is skipped with a warning; the rest of the page goes out."""

    case: str  # key in events/bad_input_x_api_pages.json
    unusable_media: list[str]


@dataclass(frozen=True)
class FailRow:
    """A page the producer cannot read: the run ends in XApiError, the checkpoint untouched."""

    case: str
    message: str


@dataclass(frozen=True)
class EventRow:
    case: str  # key in events/bad_input_producer_events.json
    message: str


SKIP_TABLE = [
    SkipRow("unknown_media_type", ["16_1861742290217402368: unknown media type 'hologram'"]),
    SkipRow("photo_without_url", ["3_1861742290217402368: photo without url"]),
]

FAIL_TABLE = [
    FailRow(
        "truncated_json",
        "X API answered an unexpected body: body: Invalid JSON: EOF while parsing a string "
        "at line 1 column 299",
    ),
    FailRow(
        "html_instead_of_json",
        "X API answered an unexpected body: body: Invalid JSON: expected value at line 1 column 1",
    ),
    FailRow(
        "data_not_a_list",
        "X API answered an unexpected body: data: Input should be a valid array",
    ),
    FailRow("page_without_meta", "X API answered an unexpected body: meta: Field required"),
    FailRow(
        "media_without_type",
        "X API answered an unexpected body: includes.media.0.type: Field required",
    ),
    FailRow(
        "post_id_not_numeric",
        "X API answered an unexpected body: data.0.id: String should match pattern '^[0-9]{1,25}$'",
    ),
]

EVENT_TABLE = [
    EventRow(
        "empty_object",
        "expected an EventBridge scheduled event: version: Field required; "
        "id: Field required; source: Field required; account: Field required; "
        "time: Field required; region: Field required; resources: Field required; "
        "detail-type: Field required; detail: Field required",
    ),
    EventRow(
        "not_an_object",
        "expected an EventBridge scheduled event: event: Input should be a valid dictionary "
        "or instance of EventBridgeModel",
    ),
    EventRow(
        "time_not_a_date",
        "expected an EventBridge scheduled event: time: Input should be a valid datetime or "
        "date, input is too short",
    ),
    EventRow(
        "missing_detail_type",
        "expected an EventBridge scheduled event: detail-type: Field required",
    ),
]


@pytest.fixture
def replaying(
    tmp_path: Path,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> Callable[[str], ModuleType]:
    """Cold-start the handler replaying one recording of the bad pages sample."""

    def cold_start(case: str) -> ModuleType:
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(load_event(PAGES)[case]), encoding="utf-8")
        return load_app(replay_env(PAGES) | {"REPLAY_URI": str(path)})

    return cold_start


def test_tables_cover_every_sample() -> None:
    # GIVEN the samples WHEN compared with the tables THEN each case has exactly one row
    cases = [row.case for row in SKIP_TABLE] + [row.case for row in FAIL_TABLE]
    assert sorted(cases) == sorted(load_event(PAGES))
    assert [row.case for row in EVENT_TABLE] == list(load_event(SCHEDULED_EVENTS))


@pytest.mark.parametrize("row", SKIP_TABLE, ids=[row.case for row in SKIP_TABLE])
def test_post_with_unusable_media_is_skipped_with_a_warning(
    row: SkipRow,
    aws: Aws,
    replaying: Callable[[str], ModuleType],
    log_output: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a page with one post whose only media cannot be used, and one good photo post
    app = replaying(row.case)
    capsys.readouterr()

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the good photo is published and the run completes past both posts
    assert result == {
        "pages": 1,
        "posts": 2,
        "published": {"cats": 1, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": NEWEST_POST,
    }
    assert aws.drain("cats") == [GOOD_PHOTO]
    assert aws.checkpoint() is not None
    # AND the bad post is counted and named in a warning
    assert emitted_metrics(capsys.readouterr().out)[("PostsSkipped", None)] == 1
    warnings = [
        (record["level"], record["post_id"], record["unusable_media"])
        for record in map(json.loads, log_output.getvalue().splitlines())
        if record["message"] == "Post skipped: none of its media can be used"
    ]
    assert warnings == [("WARNING", NEWEST_POST, row.unusable_media)]


@pytest.mark.parametrize("row", FAIL_TABLE, ids=[row.case for row in FAIL_TABLE])
def test_unreadable_page_ends_the_run_with_x_api_error(
    row: FailRow,
    aws: Aws,
    replaying: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN X answers 200 with a body the producer cannot read
    app = replaying(row.case)
    capsys.readouterr()

    # WHEN the schedule fires THEN the run fails with XApiError saying where and what
    with pytest.raises(XApiError) as raised:
        app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())
    assert str(raised.value) == row.message
    # AND nothing is published and no checkpoint is written: the next run reads the page again
    assert aws.drain("cats") == []
    assert aws.drain("dogs") == []
    assert aws.checkpoint() is None
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics[("ApiCalls", None)], metrics[("PostsRead", None)]) == (1, 0)


@pytest.mark.parametrize("row", EVENT_TABLE, ids=[row.case for row in EVENT_TABLE])
def test_event_that_is_not_a_scheduled_event_is_invalid_event(
    row: EventRow,
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN the handler and an event that is not an EventBridge scheduled event
    app = load_app(replay_env("x_api_search_photos.json"))
    event = json.loads((EVENTS / SCHEDULED_EVENTS).read_text(encoding="utf-8"))[row.case]

    # WHEN it is invoked THEN it raises InvalidEvent naming each field and rule
    with pytest.raises(app.InvalidEvent) as raised:
        app.lambda_handler(event, FakeLambdaContext())
    assert str(raised.value) == row.message
    # AND nothing was read or written
    assert aws.checkpoint() is None
    assert aws.drain("cats") == []


@pytest.mark.parametrize("case", ["both_bodies", "no_body"])
def test_recorded_page_needs_exactly_one_body(case: str, tmp_path: Path) -> None:
    # GIVEN a recording whose page has both body and raw_body, or neither
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(load_event(RECORDINGS)[case]), encoding="utf-8")

    # WHEN it is loaded THEN it is refused as malformed, saying why
    with pytest.raises(RecordingError) as raised:
        load_recording(str(path))
    assert str(raised.value).startswith(f"recording {path} is malformed: 1 validation error")
    assert "Value error, a page needs exactly one of body and raw_body" in str(raised.value)
