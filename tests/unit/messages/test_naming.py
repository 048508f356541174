"""The tooling's copy of the naming rules is the functions' own (tweetlens may not import them)."""

from __future__ import annotations

import pytest

from common.messages import execution_name as functions_execution_name
from common.messages import url_digest as functions_url_digest
from fetch_image.fetcher import JPEG
from fetch_image.fetcher import image_key as functions_image_key
from tweetlens.naming import execution_name, image_key, url_digest

URLS = ["https://pbs.twimg.com/media/abc.jpg", "https://example.com/a b/ü.png?x=1&y=2"]


@pytest.mark.parametrize("url", URLS)
def test_url_digest_is_the_functions_rule(url: str) -> None:
    # GIVEN an image URL / WHEN both sides digest it / THEN they agree
    assert url_digest(url) == functions_url_digest(url)


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("sequence", [1, 2, 999])
def test_execution_name_is_the_classifier_rule(url: str, sequence: int) -> None:
    # GIVEN an attempt at a URL / WHEN both sides name its execution / THEN the names match
    assert execution_name(url, sequence) == functions_execution_name(url, sequence)


@pytest.mark.parametrize("url", URLS)
def test_image_key_is_the_fetch_function_key_for_a_jpeg(url: str) -> None:
    # GIVEN a JPEG image URL / WHEN both sides compute its S3 key / THEN the keys match
    assert image_key(url) == functions_image_key(url, JPEG)
