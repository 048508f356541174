"""The image server's faults, met by FetchImageFunction's real downloader.

These tests hold the demo's expectations (``FAULT_ERRORS``) to what the fetch function
really raises for each broken route, over loopback TLS trusted through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fetch_image import errors
from fetch_image.fetcher import download
from fetch_image.settings import FetchSettings
from fetch_image.transport import pinned_https_opener, system_resolver
from tests.local.conftest import photo
from tweetlens.demo_stream import FAULT_ERRORS
from tweetlens.imageserver import ImageServer

pytestmark = pytest.mark.enable_socket


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with ImageServer(slow_pause_seconds=3.0) as running:
        yield running


@pytest.fixture
def settings(server: ImageServer, monkeypatch: pytest.MonkeyPatch) -> FetchSettings:
    # The worker of the local cloud gets the same variable: OpenSSL reads it per context.
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
    return FetchSettings.from_environ(
        {
            "ALLOWED_IMAGE_HOSTS": server.host,
            "EXTRA_ALLOWED_NETWORKS": server.allowed_network,
            "READ_TIMEOUT_SECONDS": "1",
        }
    )


def _fetch(url: str, settings: FetchSettings) -> bytes:
    return download(
        url, settings=settings, resolver=system_resolver, opener=pinned_https_opener
    ).body


def test_photo_downloads_through_the_generated_ca(
    server: ImageServer, settings: FetchSettings
) -> None:
    # GIVEN the image server and a fetcher trusting its CA
    # WHEN a photo is downloaded / THEN the bytes are the shipped photo's
    assert _fetch(server.media_url("astronaut"), settings) == photo("astronaut")


@pytest.mark.parametrize("fault", sorted(FAULT_ERRORS))
def test_fault_route_raises_the_error_the_demo_expects(
    server: ImageServer, settings: FetchSettings, fault: str
) -> None:
    # GIVEN a broken route / WHEN downloaded / THEN the fetch function's named error
    with pytest.raises(errors.FetchImageError) as caught:
        _fetch(server.fault_url(fault), settings)
    assert type(caught.value).__name__ == FAULT_ERRORS[fault]


@pytest.mark.parametrize("fault", ["500", "slow", "reset"])
def test_transient_fault_is_an_image_host_error(
    server: ImageServer, settings: FetchSettings, fault: str
) -> None:
    # GIVEN a route that fails in a way a retry may cure / WHEN downloaded
    # THEN ImageHostError, the error the state machine retries
    with pytest.raises(errors.ImageHostError):
        _fetch(server.fault_url(fault), settings)


def test_flaky_route_succeeds_on_the_third_try(
    server: ImageServer, settings: FetchSettings
) -> None:
    # GIVEN a fresh flaky key / WHEN downloaded three times
    url = server.fault_url("flaky-fetch")
    for _ in range(2):
        with pytest.raises(errors.ImageHostError):
            _fetch(url, settings)

    # THEN the third download is the photo
    assert _fetch(url, settings) == photo("chelsea")
