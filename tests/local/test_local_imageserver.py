"""The loopback HTTPS image server: TLS with its own CA, photos, and every fault route."""

from __future__ import annotations

import http.client
import socket
import ssl
import time

import pytest

from tests.local.conftest import photo
from tweetlens.imageserver import (
    NOT_AN_IMAGE_BODY,
    PRIVATE_REDIRECT_TARGET,
    TOO_LARGE_BYTES,
    ImageServer,
    ImageServerError,
    UnknownPhoto,
)

pytestmark = pytest.mark.enable_socket


def _get(
    server: ImageServer, path: str, *, timeout: float = 5.0
) -> tuple[http.client.HTTPResponse, bytes]:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    connection = http.client.HTTPSConnection(
        "localhost", server.port, context=context, timeout=timeout
    )
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_base_url_is_localhost_https(image_server: ImageServer) -> None:
    # GIVEN a running server / THEN its URLs name localhost and its port
    assert image_server.base_url == f"https://localhost:{image_server.port}"
    assert image_server.host == f"localhost:{image_server.port}"
    assert image_server.allowed_network == "127.0.0.1/32"
    assert image_server.media_url("chelsea") == f"{image_server.base_url}/media/chelsea.jpg"
    assert image_server.photo_names == ["astronaut", "chelsea", "coffee", "rocket"]


def test_media_url_of_unknown_photo_is_refused(image_server: ImageServer) -> None:
    # GIVEN a photo name that is not shipped / WHEN its URL is asked / THEN UnknownPhoto
    with pytest.raises(UnknownPhoto):
        image_server.media_url("dog")


def test_certificate_is_trusted_only_through_its_own_ca(image_server: ImageServer) -> None:
    # GIVEN a client that trusts another image server's CA, not this one's
    with ImageServer() as other:
        foreign_ca = other.ca_file.read_text(encoding="ascii")
    context = ssl.create_default_context(cadata=foreign_ca)
    connection = http.client.HTTPSConnection("localhost", image_server.port, context=context)

    # WHEN it connects / THEN the server's certificate does not verify
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/media/chelsea.jpg")
    connection.close()


def test_certificate_names_localhost_only(image_server: ImageServer) -> None:
    # GIVEN a client that trusts the generated CA
    context = ssl.create_default_context(cafile=str(image_server.ca_file))
    raw = socket.create_connection(("127.0.0.1", image_server.port))

    # WHEN it expects another host name on the loopback port / THEN the name check fails
    with pytest.raises(ssl.SSLCertVerificationError):
        context.wrap_socket(raw, server_hostname="images.example.com")
    raw.close()


def test_photo_is_served_with_its_bytes(image_server: ImageServer) -> None:
    # GIVEN the server / WHEN a photo is fetched through the generated CA
    response, body = _get(image_server, "/media/chelsea.jpg")

    # THEN it comes back whole, as a JPEG
    assert response.status == 200
    assert response.getheader("Content-Type") == "image/jpeg"
    assert response.getheader("Content-Length") == str(len(body))
    assert body == photo("chelsea")


def test_unknown_photo_is_404(image_server: ImageServer) -> None:
    response, body = _get(image_server, "/media/dog.jpg")
    assert (response.status, body) == (404, b"404 Not Found\n")


def test_unknown_path_is_404(image_server: ImageServer) -> None:
    response, body = _get(image_server, "/somewhere/else")
    assert (response.status, body) == (404, b"404 Not Found\n")


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b"404 Not Found\n"), (410, b"410 Gone\n"), (500, b"500 Internal Server Error\n")],
)
def test_status_faults(image_server: ImageServer, status: int, body: bytes) -> None:
    # GIVEN a status fault route / WHEN fetched / THEN that status and a short text body
    response, received = _get(image_server, f"/faults/{status}")
    assert response.status == status
    assert response.getheader("Content-Type") == "text/plain"
    assert received == body


def test_flaky_fails_twice_per_key_then_serves_the_photo(image_server: ImageServer) -> None:
    # GIVEN a fresh flaky key
    path = "/faults/flaky-test-key"

    # WHEN it is fetched three times
    statuses = [_get(image_server, path)[0].status for _ in range(2)]
    third, body = _get(image_server, path)

    # THEN the first two fail with 500 and the third is the photo; another key starts over
    assert statuses == [500, 500]
    assert third.status == 200
    assert body == photo("chelsea")
    assert _get(image_server, "/faults/flaky-other-key")[0].status == 500
    assert image_server.request_count(path) == 3


def test_slow_body_trips_a_read_timeout(image_server: ImageServer) -> None:
    # GIVEN a client whose read timeout is shorter than the server's pause between chunks
    # WHEN it reads the slow route's body / THEN the read times out
    with pytest.raises(TimeoutError):
        _get(image_server, "/faults/slow", timeout=0.5)


def test_too_large_streams_past_15_mb_without_content_length(image_server: ImageServer) -> None:
    # GIVEN the server / WHEN the oversized route is read to the end
    response, body = _get(image_server, "/faults/too-large", timeout=30)

    # THEN it is chunked, announces no length and is JPEG-prefixed, 16 MiB long
    assert response.status == 200
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert body.startswith(b"\xff\xd8\xff")
    assert len(body) == TOO_LARGE_BYTES
    assert len(body) > 15 * 1024 * 1024


def test_not_an_image_claims_to_be_jpeg(image_server: ImageServer) -> None:
    response, body = _get(image_server, "/faults/not-an-image")
    assert response.status == 200
    assert response.getheader("Content-Type") == "image/jpeg"
    assert body == NOT_AN_IMAGE_BODY


def test_redirect_points_at_instance_metadata(image_server: ImageServer) -> None:
    response, body = _get(image_server, "/faults/redirect-private")
    assert response.status == 302
    assert response.getheader("Location") == PRIVATE_REDIRECT_TARGET
    assert PRIVATE_REDIRECT_TARGET.startswith("https://169.254.169.254/")
    assert body == b""


def test_reset_drops_the_connection_without_a_response(image_server: ImageServer) -> None:
    # GIVEN the server / WHEN the reset route is requested
    # THEN the client sees the connection cut before any status line
    with pytest.raises(ConnectionResetError):
        _get(image_server, "/faults/reset")


def test_requests_are_counted_per_path() -> None:
    # GIVEN a fresh server
    with ImageServer() as server:
        # WHEN paths are fetched, one with a query string
        _get(server, "/media/coffee.jpg")
        _get(server, "/media/coffee.jpg?name=large")
        _get(server, "/faults/404")

        # THEN counts are per path, query ignored, and can be reset
        assert server.request_counts() == {"/media/coffee.jpg": 2, "/faults/404": 1}
        server.reset_counts()
        assert server.request_counts() == {}


def test_stop_removes_the_certificates() -> None:
    # GIVEN a started server and its CA file
    server = ImageServer()
    server.start()
    ca_file = server.ca_file
    assert ca_file.is_file()

    # WHEN it stops
    server.stop()

    # THEN the certificate directory is gone
    assert not ca_file.exists()


def test_unique_url_serves_a_distinct_image_of_the_same_picture(image_server: ImageServer) -> None:
    # GIVEN two tags of one photo
    first = image_server.unique_url("chelsea", "img-1")
    second = image_server.unique_url("chelsea", "img-2")
    # WHEN both are fetched
    base = image_server.base_url
    _, first_body = _get(image_server, first.removeprefix(base))
    _, second_body = _get(image_server, second.removeprefix(base))
    # THEN each is its own JPEG (comment segment naming the tag) of the same picture
    assert first == f"{base}/unique/img-1/chelsea.jpg"
    assert first_body != second_body
    assert first_body.startswith(b"\xff\xd8\xff\xfe")
    assert b"tweetlens:img-1" in first_body
    assert first_body.replace(b"\xff\xfe\x00\x11tweetlens:img-1", b"") == photo("chelsea")


def test_unique_url_refuses_unknown_photos_and_bad_tags(image_server: ImageServer) -> None:
    with pytest.raises(UnknownPhoto):
        image_server.unique_url("nope", "1")
    with pytest.raises(ImageServerError, match="tag"):
        image_server.unique_url("chelsea", "a/b")
    # An unknown photo under the route is a 404, like /media/
    response, _ = _get(image_server, "/unique/1/nope.jpg")
    assert response.status == 404


def test_response_delay_holds_every_response(image_server: ImageServer) -> None:
    # GIVEN a 0.2 s host latency
    image_server.set_response_delay(0.2)
    try:
        # WHEN a photo is fetched
        started = time.monotonic()
        response, body = _get(image_server, "/media/chelsea.jpg")
        elapsed = time.monotonic() - started
    finally:
        image_server.set_response_delay(0.0)
    # THEN it arrives whole, no sooner than the delay
    assert (response.status, body) == (200, photo("chelsea"))
    assert elapsed >= 0.2


@pytest.mark.parametrize("seconds", [-1.0, float("nan")])
def test_a_bad_response_delay_is_refused(seconds: float) -> None:
    with pytest.raises(ImageServerError, match="zero or more seconds"):
        ImageServer(response_delay=seconds)
