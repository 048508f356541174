"""The bench's workload: unique images, duplicate posts after their originals."""

from __future__ import annotations

import json

from tweetlens.bench.workload import ROUTE, build_workload


def _url(photo: str, tag: str) -> str:
    return f"https://localhost:1/unique/{tag}/{photo}.jpg"


def test_unique_images_and_duplicates_are_counted_exactly() -> None:
    # GIVEN 20 images with 0.25 duplicate posts each
    workload = build_workload(20, 0.25, seed=1, url_for=_url)
    # THEN 20 unique URLs, 5 duplicate posts, 25 posts with distinct ids
    assert len(workload.unique_urls) == 20
    assert workload.duplicates == 5
    assert len(workload.posts) == 25
    assert len({post.post_id for post in workload.posts}) == 25


def test_every_duplicate_comes_after_its_original() -> None:
    workload = build_workload(30, 1.0, seed=7, url_for=_url)
    seen: set[str] = set()
    for post in workload.posts:
        # THEN a duplicate's URL was posted before; an original's was not
        assert (post.url in seen) is post.duplicate
        seen.add(post.url)


def test_the_same_seed_gives_the_same_workload() -> None:
    assert build_workload(10, 0.5, 3, _url) == build_workload(10, 0.5, 3, _url)
    assert build_workload(10, 0.5, 3, _url) != build_workload(10, 0.5, 4, _url)


def test_a_post_is_a_route_message() -> None:
    # GIVEN the first post / WHEN its body is read / THEN it has PhotoMessage's fields
    post = build_workload(1, 0.0, 1, _url).posts[0]
    assert json.loads(post.body()) == {
        "url": "https://localhost:1/unique/img-0/chelsea.jpg",
        "post_id": "1",
        "media_key": "3_1",
        "text": "bench post 1 #cat",
        "hashtags": ["cat"],
        "route": ROUTE,
        "attempt": 0,
    }
