"""PictureCachingLabeler: one look per picture, whatever file it comes in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.local.conftest import photo
from tweetlens.imageserver import tagged_photo
from tweetlens.localcloud.labelers import LabelerError, OpenCvLabeler, PictureCachingLabeler


class CountingLabeler:
    def __init__(self, inner: OpenCvLabeler) -> None:
        self.inner = inner
        self.calls = 0

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]:
        self.calls += 1
        return self.inner.detect_labels(image, max_labels=max_labels, min_confidence=min_confidence)


def test_two_files_of_one_picture_share_one_look(labeler: OpenCvLabeler) -> None:
    # GIVEN the same photo in two files that differ only by a JPEG comment
    counting = CountingLabeler(labeler)
    caching = PictureCachingLabeler(counting)
    first, second = tagged_photo(photo("chelsea"), "a"), tagged_photo(photo("chelsea"), "b")
    assert first != second
    # WHEN both are labelled
    answers = [caching.detect_labels(b, max_labels=10, min_confidence=70) for b in (first, second)]
    # THEN the inner labeler looked once and both got its answer
    assert counting.calls == 1
    assert caching.misses == 1
    assert answers[0] == answers[1]
    assert {label["Name"] for label in answers[0]} == {"Animal", "Cat", "Mammal", "Pet"}


def test_another_picture_or_other_settings_are_looked_at_afresh(labeler: OpenCvLabeler) -> None:
    counting = CountingLabeler(labeler)
    caching = PictureCachingLabeler(counting)
    caching.detect_labels(photo("chelsea"), max_labels=10, min_confidence=70)
    caching.detect_labels(photo("coffee"), max_labels=10, min_confidence=70)
    caching.detect_labels(photo("chelsea"), max_labels=1, min_confidence=70)
    assert counting.calls == 3


def test_errors_are_the_inner_labelers_and_never_cached(labeler: OpenCvLabeler) -> None:
    counting = CountingLabeler(labeler)
    caching = PictureCachingLabeler(counting)
    for _ in range(2):
        with pytest.raises(LabelerError) as raised:
            caching.detect_labels(b"not an image", max_labels=10, min_confidence=70)
        assert raised.value.code == "InvalidImageFormatException"
    assert counting.calls == 2
