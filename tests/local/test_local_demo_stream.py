"""The demo stream: the replay recording's shape and the outcome it must produce."""

from __future__ import annotations

from collections import Counter

import pytest

from producer.extract import extract_photos
from producer.page import SearchPage, read_page_object
from producer.routing import Router
from tweetlens.demo_stream import (
    DEFAULT_ROUTES,
    Recording,
    build_recording,
    expected_outcome,
)
from tweetlens_xapi.recording import ReplayRecording

BASE = "https://localhost:4443"


@pytest.fixture(scope="module")
def recording() -> Recording:
    return build_recording(BASE)


def test_recording_has_fifty_posts_in_five_linked_pages(recording: Recording) -> None:
    # GIVEN the default demo stream
    pages = recording.pages

    # THEN five pages of ten posts, linked by next_token, the last without one
    assert [len(page.body.data) for page in pages] == [10, 10, 10, 10, 10]
    tokens = [page.body.meta.next_token for page in pages]
    assert tokens == ["demo2026p01", "demo2026p02", "demo2026p03", "demo2026p04", None]
    assert all(page.status == 200 for page in pages)
    assert [page.headers["x-rate-limit-remaining"] for page in pages] == [
        "449",
        "448",
        "447",
        "446",
        "445",
    ]
    assert {page.headers["x-rate-limit-limit"] for page in pages} == {"450"}


def test_posts_are_newest_first_with_consistent_meta(recording: Recording) -> None:
    # GIVEN the pages / THEN ids strictly decrease across the stream and meta matches the data
    ids = [int(post.id) for page in recording.pages for post in page.body.data]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    for page in recording.pages:
        page_ids = [int(post.id) for post in page.body.data]
        assert page.body.meta.newest_id == str(max(page_ids))
        assert page.body.meta.oldest_id == str(min(page_ids))
        assert page.body.meta.result_count == len(page_ids)


def test_hashtag_entities_point_into_the_text(recording: Recording) -> None:
    for page in recording.pages:
        for post in page.body.data:
            for tag in post.entities.hashtags if post.entities else []:
                assert post.text[tag.start : tag.end] == f"#{tag.tag}"


def test_every_media_key_is_in_its_page_includes(recording: Recording) -> None:
    # GIVEN each page / THEN every referenced media key is included; only photos have a url
    for page in recording.pages:
        media = {m.media_key: m for m in page.body.includes.media} if page.body.includes else {}
        referenced = {
            key
            for post in page.body.data
            if post.attachments is not None
            for key in post.attachments.media_keys
        }
        assert referenced == set(media)
        for item in media.values():
            assert (item.url is not None) == (item.type == "photo")


def test_stream_contains_every_kind_of_post(recording: Recording) -> None:
    # GIVEN the stream's posts and media
    posts = [post for page in recording.pages for post in page.body.data]
    media = {
        m.media_key: m
        for page in recording.pages
        for m in (page.body.includes.media if page.body.includes else [])
    }
    keys_per_post = [post.attachments.media_keys if post.attachments else [] for post in posts]
    types = Counter(media[key].type for keys in keys_per_post for key in keys)
    key_uses = Counter(key for keys in keys_per_post for key in keys)
    url_uses = Counter(
        url for keys in keys_per_post for key in keys if (url := media[key].url) is not None
    )

    # THEN it has videos, GIFs, posts without media, several photos in one post, re-used
    # media (retweets), the same URL in several posts and every broken-image route
    assert types["video"] == 3
    assert types["animated_gif"] == 2
    assert sum(1 for keys in keys_per_post if not keys) == 3
    assert max(len(keys) for keys in keys_per_post) == 4
    assert sum(1 for uses in key_uses.values() if uses > 1) == 4
    assert url_uses[f"{BASE}/media/chelsea.jpg"] > 5
    fault_paths = {url.removeprefix(f"{BASE}/faults/") for url in url_uses if "/faults/" in url}
    assert {"404", "410", "not-an-image", "too-large", "redirect-private"} <= fault_paths
    assert any(path.startswith("flaky-") for path in fault_paths)


def test_same_seed_same_recording_other_seed_other_recording() -> None:
    assert build_recording(BASE).to_json() == build_recording(BASE).to_json()
    assert build_recording(BASE, seed=7).to_json() != build_recording(BASE).to_json()


def test_expected_outcome_of_the_default_stream(recording: Recording) -> None:
    # GIVEN the default demo stream / WHEN its expected outcome is computed
    outcome = expected_outcome(recording)

    # THEN the counts and the failing URLs are exactly these
    assert outcome.posts == 50
    assert outcome.posts_with_photos == 43
    assert outcome.messages_per_route == {"cats": 37, "dogs": 13}
    assert outcome.messages == 50
    assert outcome.unique_urls == 10
    assert outcome.duplicate_messages == 40
    assert outcome.failing_urls == {
        f"{BASE}/faults/404": "ImageNotFound",
        f"{BASE}/faults/410": "ImageNotFound",
        f"{BASE}/faults/not-an-image": "UnsupportedImageType",
        f"{BASE}/faults/too-large": "ImageTooLarge",
        f"{BASE}/faults/redirect-private": "BlockedUrl",
    }
    assert outcome.flaky_urls == [f"{BASE}/faults/flaky-demo397"]
    assert sorted(outcome.classified_urls) == [
        f"{BASE}/faults/flaky-demo397",
        f"{BASE}/media/astronaut.jpg",
        f"{BASE}/media/chelsea.jpg",
        f"{BASE}/media/coffee.jpg",
        f"{BASE}/media/rocket.jpg",
    ]
    assert outcome.labels[f"{BASE}/media/chelsea.jpg"] == ["Animal", "Cat", "Mammal", "Pet"]
    assert outcome.labels[f"{BASE}/media/astronaut.jpg"] == ["Face", "Head", "Person"]
    assert outcome.labels[f"{BASE}/media/coffee.jpg"] == []


def test_producer_reads_the_recording_and_routes_as_expected(recording: Recording) -> None:
    # GIVEN the recording as JSON, read by the producer's own replay model
    replayed = ReplayRecording.model_validate_json(recording.to_json())
    router = Router({route: list(tags) for route, tags in DEFAULT_ROUTES.items()})

    # WHEN every page goes through the producer's extraction and routing
    per_route: Counter[str] = Counter()
    urls: set[str] = set()
    for page in replayed.pages:
        read = read_page_object(page.json_body)
        assert isinstance(read, SearchPage)
        assert (read.rejected_posts, read.rejected_media) == ((), ())
        routed = router.route_page(extract_photos(read).posts)
        assert routed.rejected == ()
        for route, messages in routed.messages.items():
            per_route[route] += len(messages)
            urls.update(message.url for message in messages)

    # THEN the producer publishes what expected_outcome says
    outcome = expected_outcome(recording)
    assert dict(per_route) == outcome.messages_per_route
    assert len(urls) == outcome.unique_urls


def test_base_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="base_url must be an https URL"):
        build_recording("http://localhost:4443")
