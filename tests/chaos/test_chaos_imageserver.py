"""The image server's routes added for the chaos run: 503 then OK, and very slow bodies."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Iterator

import pytest

from tweetlens.imageserver import HOSTNAME, MAX_TRICKLE_PAUSE_MS, ImageServer


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with ImageServer(flaky_failures=2) as image_server:
        yield image_server


def _get(server: ImageServer, path: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    connection = http.client.HTTPSConnection(HOSTNAME, server.port, context=context, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_unavailable_answers_503_then_the_photo(server: ImageServer) -> None:
    # GIVEN a host that sheds load for its first two requests per key
    # WHEN the same URL is fetched three times
    answers = [_get(server, "/faults/unavailable-a") for _ in range(3)]
    # THEN two 503s come first, then the photo
    assert [status for status, _ in answers] == [503, 503, 200]
    assert answers[2][1] == server.photo_bytes(server.flaky_photo)


def test_unavailable_keys_count_apart_from_flaky_keys(server: ImageServer) -> None:
    # GIVEN a flaky key that already failed twice
    _get(server, "/faults/flaky-b")
    _get(server, "/faults/flaky-b")
    # WHEN the unavailable route of the same key is fetched
    status, _ = _get(server, "/faults/unavailable-b")
    # THEN it still fails: each route has its own count
    assert status == 503


def test_trickle_sends_the_whole_photo_slowly(server: ImageServer) -> None:
    # GIVEN a body sent in four parts 200 ms apart
    started = time.monotonic()
    # WHEN it is fetched
    status, body = _get(server, "/faults/trickle-200")
    # THEN the whole photo arrives, after at least the three pauses
    assert (status, body) == (200, server.photo_bytes(server.flaky_photo))
    assert time.monotonic() - started >= 0.6


def test_trickle_beyond_the_maximum_pause_is_not_found(server: ImageServer) -> None:
    # GIVEN a pause longer than the route allows
    # WHEN it is fetched
    status, _ = _get(server, f"/faults/trickle-{MAX_TRICKLE_PAUSE_MS + 1}")
    # THEN the server answers 404, as for any unknown path
    assert status == 404
