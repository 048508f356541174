"""Producer dead letters: typed, ASCII JSON, and always under SQS's 256 KiB."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from producer.letters import (
    MAX_LETTER_BYTES,
    PageLetter,
    PhotoLetter,
    ProducerLetter,
    encode_letter,
)

QUERY = "(#cat OR #kitten) has:images -is:retweet"
LETTERS: TypeAdapter[ProducerLetter] = TypeAdapter(ProducerLetter)


def page_letter(raw: str) -> PageLetter:
    return PageLetter(
        reason="body: Invalid JSON: Expecting value: line 1 column 1 (char 0)",
        query=QUERY,
        raw=raw,
        since_id=None,
        pagination_token="b26v89c19zqg8o3fpzu7t6r5e4w3q2a1s0d9f8g7h6j5k",
        until_id="1861742215108022271",
        next_token=None,
        strike=1,
    )


def test_small_letter_is_sent_whole_and_reads_back_as_its_model() -> None:
    # GIVEN a page letter whose body fits
    letter = page_letter("<html><body>Over capacity</body></html>")

    # WHEN it is encoded THEN it reads back equal, through the discriminated union
    body = encode_letter(letter)
    assert LETTERS.validate_json(body) == letter
    assert json.loads(body)["raw_truncated"] is False


def test_big_raw_is_cut_to_fit_and_says_so() -> None:
    # GIVEN a page body of 300,000 characters, half of them escaped in JSON
    raw = "é\n" * 150_000

    # WHEN it is encoded
    body = encode_letter(page_letter(raw))

    # THEN the letter is ASCII, at most the limit, and its raw is a start of the body
    assert body.isascii()
    assert MAX_LETTER_BYTES - 12 <= len(body) <= MAX_LETTER_BYTES
    decoded = json.loads(body)
    assert decoded["raw_truncated"] is True
    assert raw.startswith(decoded["raw"])
    assert len(decoded["raw"]) > 30_000


def test_big_structured_raw_becomes_the_start_of_its_json_text() -> None:
    # GIVEN a photo letter whose raw post is larger than a message can be
    post = {"id": "1861742398390657025", "text": "x" * 300_000}
    letter = PhotoLetter(
        error="MediaMissing",
        reason="media key 3_1 is not in includes.media",
        query=QUERY,
        raw={"post": post, "media": None},
        post_id="1861742398390657025",
        media_key="3_1",
        route="cats",
    )

    # WHEN it is encoded THEN raw is the cut JSON text of the original raw
    decoded = json.loads(encode_letter(letter))
    assert decoded["raw_truncated"] is True
    assert decoded["raw"].startswith('{"post":{"id":"1861742398390657025","text":"xxx')
    assert decoded["post_id"] == "1861742398390657025"


def test_letters_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        LETTERS.validate_python({**page_letter("x").model_dump(), "extra": 1})
