"""read_page: a search page read item by item, so one bad item costs only itself."""

from __future__ import annotations

import json

from producer.page import RejectedItem, SearchPage, UnreadablePage, read_page
from tests.unit.producer.producer_testkit import load_event
from tweetlens_xapi.models import XMeta

GOOD_POST = {
    "id": "1861742215108022271",
    "text": "Window seat, as always #cat",
    "attachments": {"media_keys": ["3_1861742101555539968"]},
    "entities": {"hashtags": [{"tag": "cat"}]},
}
GOOD_MEDIA = {
    "media_key": "3_1861742101555539968",
    "type": "photo",
    "url": "https://pbs.twimg.com/media/GdYGk2LWoAAq7Zn.jpg",
}
META = {"newest_id": "1861742398390657025", "oldest_id": "1861742215108022271", "result_count": 2}


def test_sample_page_reads_whole() -> None:
    # GIVEN page one of the sample recording, as X sends it
    body = json.dumps(load_event("x_api_search_photos.json")["pages"][0]["body"]).encode()

    # WHEN it is read THEN every post and media object is valid and kept with its JSON
    page = read_page(body)
    assert isinstance(page, SearchPage)
    assert (len(page.posts), page.rejected_posts, len(page.media), page.rejected_media) == (
        6,
        (),
        8,
        (),
    )
    assert page.raw_posts["1861704939338346519"]["text"].startswith("Sunday nap champion")


def test_post_with_a_lone_surrogate_is_set_aside_with_its_json() -> None:
    # GIVEN a page whose first post's text holds a lone surrogate escape, which pydantic's own
    # JSON parser would refuse for the whole document
    bad = {"id": "1861742398390657025", "text": "Is this \ud800 a cat? #cat"}
    body = json.dumps({"data": [bad, GOOD_POST], "meta": META}).encode()
    assert b"\\ud800" in body

    # WHEN it is read
    page = read_page(body)

    # THEN only that post is rejected, saying where and what, and the good one is kept
    assert isinstance(page, SearchPage)
    assert page.rejected_posts == (
        RejectedItem(
            raw=bad,
            key="1861742398390657025",
            error="text: Value error, contains a lone surrogate (U+D800) at 8",
        ),
    )
    assert [post.id for post in page.posts] == ["1861742215108022271"]


def test_post_and_media_without_a_readable_key_are_rejected_without_one() -> None:
    # GIVEN a post that is not an object, and a media object whose key is not a string
    body = json.dumps(
        {"data": [42, GOOD_POST], "includes": {"media": [{"media_key": 3}]}, "meta": META}
    ).encode()

    # WHEN it is read THEN each is rejected with no key, and the reason
    page = read_page(body)
    assert isinstance(page, SearchPage)
    assert page.rejected_posts == (
        RejectedItem(
            raw=42,
            key=None,
            error="item: Input should be a valid dictionary or instance of XPost",
        ),
    )
    assert page.rejected_media == (
        RejectedItem(
            raw={"media_key": 3},
            key=None,
            error="media_key: Input should be a valid string; type: Field required",
        ),
    )
    assert page.post_count == 2


def test_body_that_is_not_json_is_unreadable_with_its_text() -> None:
    # GIVEN a body cut in the middle of a string
    body = b'{"data": [{"id": "1861742215108022271", "text": "Window se'

    # WHEN it is read THEN it is unreadable, with the body and the parser's reason, no meta
    assert read_page(body) == UnreadablePage(
        body=body.decode(),
        error="body: Invalid JSON: Unterminated string starting at: line 1 column 49 (char 48)",
    )


def test_bytes_that_are_not_utf8_are_replaced_in_the_kept_body() -> None:
    page = read_page(b'{"data": [], "meta": {"result_count": 0}, "x": "\xff"}')
    assert page == UnreadablePage(
        body='{"data": [], "meta": {"result_count": 0}, "x": "\ufffd"}',
        error="body: Invalid JSON: 'utf-8' codec can't decode byte 0xff in position 48: "
        "invalid start byte",
    )


def test_nan_is_not_json() -> None:
    page = read_page(b'{"meta": {"result_count": NaN}}')
    assert isinstance(page, UnreadablePage)
    assert page.error == "body: Invalid JSON: NaN is not allowed in JSON"


def test_json_that_is_not_an_object_is_unreadable() -> None:
    assert read_page(b'[{"id": "1"}]') == UnreadablePage(
        body='[{"id": "1"}]', error="body: expected a JSON object, got list"
    )


def test_broken_envelope_keeps_a_readable_meta() -> None:
    # GIVEN a page whose data is an object instead of a list, with a sound meta
    body = json.dumps({"data": GOOD_POST, "meta": {**META, "next_token": "tok2"}}).encode()

    # WHEN it is read THEN it is unreadable, but its meta still says where the next page is
    assert read_page(body) == UnreadablePage(
        body=body.decode(),
        error="data: Input should be a valid list",
        meta=XMeta(
            result_count=2,
            newest_id="1861742398390657025",
            oldest_id="1861742215108022271",
            next_token="tok2",
        ),
    )


def test_page_without_meta_is_unreadable_without_meta() -> None:
    body = json.dumps({"data": [GOOD_POST], "includes": {"media": [GOOD_MEDIA]}}).encode()
    assert read_page(body) == UnreadablePage(body=body.decode(), error="meta: Field required")
