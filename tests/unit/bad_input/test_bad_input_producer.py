"""Bad input at ProducerFunction: poison in X API pages (replayed) and invocation events.

Each poison page, post or photo ends in exactly one named letter on the producer's
dead-letter queue, the good posts beside it are published, and the checkpoint moves on.
Already covered in ``tests/unit/producer``: missing ``includes``, a page unreadable on three
runs in a row (given up), 429, 401, an unknown next_token and an SQS event instead of a
scheduled one.
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
QUERY = "(#cat OR #cats OR #kitten OR #dog OR #dogs OR #puppy) has:images -is:retweet"
CHECKPOINT_ID = "search#477ec7bc87d6cf63"
GOOD_PHOTO = {
    "url": "https://pbs.twimg.com/media/GdYGk2LWoAAq7Zn.jpg",
    "post_id": "1861742215108022271",
    "media_key": "3_1861742101555539968",
    "text": "Window seat, as always #cat https://t.co/Vb4nKq8ZsP",
    "hashtags": ["cat"],
    "route": "cats",
    "attempt": 0,
}
GOOD_POST = GOOD_PHOTO["post_id"]
BAD_POST = "1861742398390657025"
BAD_KEY = "3_1861742290217402368"
TOKEN = "b26v89c19zqg8o3fpzu7t6r5e4w3q2a1s0d9f8g7h6j5k"
LETTER_METRICS = {
    "page": "PagesDeadLettered",
    "post": "PostsDeadLettered",
    "photo": "PhotosDeadLettered",
    "range": "PaginationsAbandoned",
}


def other_photo(key: str, name: str, text: str) -> dict[str, Any]:
    """A good photo of the bad post: it is published, only the bad photo is dead-lettered."""
    return {
        **GOOD_PHOTO,
        "url": f"https://pbs.twimg.com/media/{name}.jpg",
        "post_id": BAD_POST,
        "media_key": key,
        "text": text,
    }


TWO_VIEWS = "Two views of one nap #cat https://t.co/Hz7QmN2pLc"
SAME_POST_PHOTO = other_photo(BAD_KEY, "GdYGq9XWcAAm3Tb", TWO_VIEWS)
# Where a run stops when page 2 of 2 cannot be read at all: page 1 enqueued, page 2 next.
AT_PAGE_2 = {
    "id": CHECKPOINT_ID,
    "next_token": TOKEN,
    "newest_id": GOOD_POST,
    "oldest_id": GOOD_POST,
    "unreadable_reads": "1",
}
STOPPED_AT_PAGE_2 = {
    "pages": 2,
    "posts": 1,
    "published": {"cats": 1, "dogs": 0},
    "stopped_reason": "unreadable_page",
    "since_id": None,
}
PAGE_2_LETTER = {
    "kind": "page",
    "error": "UnreadablePage",
    "since_id": None,
    "pagination_token": TOKEN,
    "until_id": GOOD_POST,
    "next_token": None,
    "strike": 1,
}


def completed(published: int, since_id: str = BAD_POST, pages: int = 1) -> dict[str, Any]:
    return {
        "pages": pages,
        "posts": 2 if pages == 1 else 1,
        "published": {"cats": published, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": since_id,
    }


@dataclass(frozen=True)
class PoisonRow:
    """A replayed recording with one bad page, post or photo, and where everything ends."""

    case: str  # key in events/bad_input_x_api_pages.json
    letter: dict[str, Any]  # the one letter, without query, raw and raw_truncated
    summary: dict[str, Any]
    published: list[dict[str, Any]]
    checkpoint: dict[str, str]
    # The letter's raw, when it is not what the sample gives (see expected_raw)
    raw: Any = None


def photo_letter(error: str, reason: str, media_key: str = BAD_KEY) -> dict[str, Any]:
    return {
        "kind": "photo",
        "error": error,
        "reason": reason,
        "post_id": BAD_POST,
        "media_key": media_key,
        "route": "cats",
        "sqs_error_code": None,
    }


def done(since_id: str = BAD_POST) -> dict[str, str]:
    return {"id": CHECKPOINT_ID, "since_id": since_id}


POISON_TABLE = [
    PoisonRow(
        "post_text_with_lone_surrogate",
        {
            "kind": "post",
            "error": "InvalidPost",
            "reason": "text: Value error, contains a lone surrogate (U+D800) at 8",
            "post_id": BAD_POST,
        },
        completed(1),
        [GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "post_id_not_numeric",
        {
            "kind": "post",
            "error": "InvalidPost",
            "reason": "id: String should match pattern '^[0-9]{1,25}$'",
            "post_id": "tweet-1",
        },
        completed(1, since_id=GOOD_POST),
        [GOOD_PHOTO],
        done(GOOD_POST),
    ),
    PoisonRow(
        "unknown_media_type",
        photo_letter("UnknownMediaType", "unknown media type 'hologram'", "16_1861742290217402368"),
        completed(1),
        [GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "photo_without_url",
        photo_letter("PhotoWithoutUrl", "photo without url"),
        completed(1),
        [GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "media_without_type",
        photo_letter("InvalidMedia", "type: Field required"),
        completed(1),
        [GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "media_key_missing_from_includes",
        photo_letter(
            "MediaMissing",
            "media key 3_1861742290217402369 is not in includes.media; "
            "X: Could not find media with id: [3_1861742290217402369].",
            "3_1861742290217402369",
        ),
        completed(2),
        [SAME_POST_PHOTO, GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "photo_url_not_https",
        photo_letter(
            "InvalidPhotoMessage",
            "url: Value error, url must use https",
            "3_1861742290217402369",
        ),
        completed(2),
        [SAME_POST_PHOTO, GOOD_PHOTO],
        done(),
    ),
    PoisonRow(
        "photo_refused_by_sqs",
        {
            **photo_letter(
                "RejectedBySqs",
                "SQS refused the message: Invalid binary character '#xFFFF' was found in "
                "the message body",
            ),
            "sqs_error_code": "InvalidMessageContents",
        },
        completed(1),
        [GOOD_PHOTO],
        done(),
        raw=other_photo(
            BAD_KEY, "GdYGq9XWcAAm3Tb", "Is this a cat? \uffff #cat https://t.co/Hz7QmN2pLc"
        ),
    ),
    PoisonRow(
        "truncated_json",
        {
            **PAGE_2_LETTER,
            "reason": "body: Invalid JSON: Unterminated string starting at: line 1 column 96 "
            "(char 95)",
        },
        STOPPED_AT_PAGE_2,
        [GOOD_PHOTO],
        AT_PAGE_2,
    ),
    PoisonRow(
        "html_instead_of_json",
        {
            **PAGE_2_LETTER,
            "reason": "body: Invalid JSON: Expecting value: line 1 column 1 (char 0)",
        },
        STOPPED_AT_PAGE_2,
        [GOOD_PHOTO],
        AT_PAGE_2,
    ),
    PoisonRow(
        "body_not_an_object",
        {**PAGE_2_LETTER, "reason": "body: expected a JSON object, got list"},
        STOPPED_AT_PAGE_2,
        [GOOD_PHOTO],
        AT_PAGE_2,
    ),
    PoisonRow(
        "page_without_meta",
        {**PAGE_2_LETTER, "reason": "meta: Field required"},
        STOPPED_AT_PAGE_2,
        [GOOD_PHOTO],
        AT_PAGE_2,
    ),
    PoisonRow(
        "data_not_a_list",
        {
            **PAGE_2_LETTER,
            "reason": "data: Input should be a valid list",
            "pagination_token": None,
            "until_id": None,
            "next_token": TOKEN,
        },
        completed(1, pages=2),
        [GOOD_PHOTO],
        done(),
    ),
]


@dataclass(frozen=True)
class EventRow:
    case: str  # key in events/bad_input_producer_events.json
    message: str


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
    assert sorted(row.case for row in POISON_TABLE) == sorted(load_event(PAGES))
    assert [row.case for row in EVENT_TABLE] == list(load_event(SCHEDULED_EVENTS))


def expected_raw(row: PoisonRow) -> Any:
    """What a letter keeps of the sample: the page as served, the post, or post and media."""
    if row.raw is not None:
        return row.raw
    pages = load_event(PAGES)[row.case]["pages"]
    if row.letter["kind"] == "page":
        bad = pages[0] if row.letter["pagination_token"] is None else pages[1]
        # The replay serves a body as json.dumps writes it, as a raw body byte for byte.
        return bad.get("raw_body") or json.dumps(bad["body"])
    post, _good = pages[0]["body"]["data"]
    if row.letter["kind"] == "post":
        return post
    media = {m["media_key"]: m for m in pages[0]["body"].get("includes", {}).get("media", [])}
    return {"post": post, "media": media.get(row.letter["media_key"])}


@pytest.mark.usefixtures("sqs_refuses_what_sqs_refuses")
@pytest.mark.parametrize("row", POISON_TABLE, ids=[row.case for row in POISON_TABLE])
def test_poison_costs_one_letter_and_the_rest_goes_on(
    row: PoisonRow,
    aws: Aws,
    replaying: Callable[[str], ModuleType],
    log_output: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN X answers with one bad page, post or photo beside good posts
    app = replaying(row.case)
    capsys.readouterr()

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the good photos are published and the checkpoint moves past what was read
    assert result == row.summary
    assert aws.drain("cats") == row.published
    assert aws.drain("dogs") == []
    assert aws.checkpoint() == row.checkpoint
    # AND the bad item is exactly one named letter, with the data to replay it
    (letter,) = aws.dead_letters()
    assert letter == {
        **row.letter,
        "query": QUERY,
        "raw": expected_raw(row),
        "raw_truncated": False,
    }
    # AND it is counted by kind, and logged by name without its data
    metrics = emitted_metrics(capsys.readouterr().out)
    assert {kind: metrics[(name, None)] for kind, name in LETTER_METRICS.items()} == {
        kind: int(kind == letter["kind"]) for kind in LETTER_METRICS
    }
    logged = [
        record
        for record in map(json.loads, log_output.getvalue().splitlines())
        if record["message"] == "Dead-lettered"
    ]
    assert [(r["level"], r["kind"], r["error"], r["reason"]) for r in logged] == [
        ("WARNING", letter["kind"], letter["error"], letter["reason"])
    ]
    assert "raw" not in logged[0]


@pytest.mark.no_application_metrics
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
