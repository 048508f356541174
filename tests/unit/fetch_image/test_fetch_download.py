"""The download: redirects, statuses, the streaming size cap, magic bytes, time budget."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable

import pytest
from fetch_testkit import EXAMPLE_ADDRESS, PBS_ADDRESS, FakeOpener, FakeResolver, OpenerCall, Reply

from fetch_image.errors import (
    BlockedUrl,
    ImageHostError,
    ImageNotFound,
    ImageTooLarge,
    ImageUnavailable,
    UnsupportedImageType,
)
from fetch_image.fetcher import JPEG, PNG, download
from fetch_image.settings import FetchSettings

URL = "https://pbs.twimg.com/media/a.jpg"


def test_downloads_jpeg_from_the_checked_address(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener, jpeg_bytes: bytes
) -> None:
    # GIVEN the allowed host serving a JPEG in two chunks
    reply = opener.serve(
        "pbs.twimg.com", "/media/a.jpg", Reply(200, body=[jpeg_bytes[:100], jpeg_bytes[100:]])
    )
    # WHEN it is downloaded
    image = download(URL, settings=settings, resolver=resolver, opener=opener)
    # THEN the exact bytes come back as JPEG, fetched from the address DNS gave, once
    assert image.body == jpeg_bytes
    assert image.image_type == JPEG
    assert (image.host, image.redirects) == ("pbs.twimg.com", 0)
    assert resolver.calls == [("pbs.twimg.com", 443)]
    assert opener.calls == [
        OpenerCall(PBS_ADDRESS, 443, "pbs.twimg.com", "/media/a.jpg", 3.0, 10.0)
    ]
    assert reply.closed is True


def test_type_comes_from_magic_bytes_not_content_type(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener, png_bytes: bytes
) -> None:
    # GIVEN a PNG served as text/plain from a .jpg URL
    opener.serve(
        "pbs.twimg.com", "/media/a.jpg", Reply(200, {"Content-Type": "text/plain"}, [png_bytes])
    )
    # WHEN it is downloaded
    image = download(URL, settings=settings, resolver=resolver, opener=opener)
    # THEN it is a PNG
    assert image.image_type == PNG
    assert image.body == png_bytes


@pytest.mark.parametrize(
    ("body", "first_bytes"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "4749463839610100"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "5249464624000000"),
        (b"<html><body>not found</body></html>", "3c68746d6c3e3c62"),
        (b"\xff\xd8", "ffd8"),  # a JPEG cut short before its marker
        (b"", ""),
    ],
)
def test_other_bytes_are_unsupported_even_if_labelled_jpeg(
    body: bytes,
    first_bytes: str,
    settings: FetchSettings,
    resolver: FakeResolver,
    opener: FakeOpener,
) -> None:
    # GIVEN a body that is not JPEG or PNG, served as image/jpeg
    opener.serve(
        "pbs.twimg.com", "/media/a.jpg", Reply(200, {"Content-Type": "image/jpeg"}, [body])
    )
    # WHEN it is downloaded
    # THEN it is refused by its bytes
    with pytest.raises(UnsupportedImageType) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == (
        f"the {len(body)} bytes received are neither JPEG nor PNG (first bytes {first_bytes})"
    )


# ---------------------------------------------------------------- redirects


def test_follows_relative_and_cross_host_redirects(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener, png_bytes: bytes
) -> None:
    # GIVEN three redirects: relative, to another allowed host:port, and back
    hops = [
        opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(301, {"Location": "/media/b.jpg"})),
        opener.serve(
            "pbs.twimg.com",
            "/media/b.jpg",
            Reply(302, {"Location": "https://images.example.org:8443/c.png?x=1"}),
        ),
        opener.serve(
            "images.example.org",
            "/c.png?x=1",
            Reply(307, {"Location": "https://pbs.twimg.com/media/d.png"}),
            port=8443,
        ),
        opener.serve("pbs.twimg.com", "/media/d.png", Reply(200, body=[png_bytes])),
    ]
    # WHEN the first URL is downloaded
    image = download(URL, settings=settings, resolver=resolver, opener=opener)
    # THEN every hop was resolved, checked and requested in turn, and every response closed
    assert image.body == png_bytes
    assert (image.host, image.redirects) == ("pbs.twimg.com", 3)
    assert resolver.calls == [
        ("pbs.twimg.com", 443),
        ("pbs.twimg.com", 443),
        ("images.example.org", 8443),
        ("pbs.twimg.com", 443),
    ]
    assert [(call.address, call.port, call.host, call.target) for call in opener.calls] == [
        (PBS_ADDRESS, 443, "pbs.twimg.com", "/media/a.jpg"),
        (PBS_ADDRESS, 443, "pbs.twimg.com", "/media/b.jpg"),
        (EXAMPLE_ADDRESS, 8443, "images.example.org", "/c.png?x=1"),
        (PBS_ADDRESS, 443, "pbs.twimg.com", "/media/d.png"),
    ]
    assert [hop.closed for hop in hops] == [True, True, True, True]


def test_more_than_three_redirects_is_blocked(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a redirect loop
    opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(308, {"Location": "/media/a.jpg"}))
    # WHEN it is downloaded
    # THEN the fourth redirect is refused, after four requests
    with pytest.raises(BlockedUrl) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "more than 3 redirects"
    assert len(opener.calls) == 4


def test_redirect_without_location_is_unavailable(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a redirect that says nowhere
    opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(302))
    # WHEN it is downloaded
    # THEN it is a permanent refusal
    with pytest.raises(ImageUnavailable) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "'pbs.twimg.com' answered 302 without a Location"


# ---------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (404, ImageNotFound, "'pbs.twimg.com' answered 404: the image is gone"),
        (410, ImageNotFound, "'pbs.twimg.com' answered 410: the image is gone"),
        (408, ImageHostError, "'pbs.twimg.com' answered 408"),
        (429, ImageHostError, "'pbs.twimg.com' answered 429"),
        (500, ImageHostError, "'pbs.twimg.com' answered 500"),
        (502, ImageHostError, "'pbs.twimg.com' answered 502"),
        (503, ImageHostError, "'pbs.twimg.com' answered 503"),
        (504, ImageHostError, "'pbs.twimg.com' answered 504"),
        (400, ImageUnavailable, "'pbs.twimg.com' answered 400"),
        (401, ImageUnavailable, "'pbs.twimg.com' answered 401"),
        (403, ImageUnavailable, "'pbs.twimg.com' answered 403"),
        (451, ImageUnavailable, "'pbs.twimg.com' answered 451"),
        (204, ImageUnavailable, "'pbs.twimg.com' answered 204"),
        (206, ImageUnavailable, "'pbs.twimg.com' answered 206"),
        (304, ImageUnavailable, "'pbs.twimg.com' answered 304"),
    ],
)
def test_status_maps_to_named_error(
    status: int,
    error: type[Exception],
    reason: str,
    *,
    settings: FetchSettings,
    resolver: FakeResolver,
    opener: FakeOpener,
) -> None:
    # GIVEN the host answering a non-200 status
    reply = opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(status, body=[b"ignored"]))
    # WHEN it is downloaded
    # THEN the named error says so, the body is never read and the response is closed
    with pytest.raises(error) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert type(raised.value) is error
    assert str(raised.value) == reason
    assert reply.chunks_read == 0
    assert reply.closed is True


def test_dns_failure_is_a_host_error(settings: FetchSettings, opener: FakeOpener) -> None:
    # GIVEN DNS that cannot resolve the allowed host
    resolver = FakeResolver(answers={})
    # WHEN it is downloaded
    # THEN it is transient, and nothing is requested
    with pytest.raises(ImageHostError) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "DNS lookup of 'pbs.twimg.com' failed"
    assert isinstance(raised.value.__cause__, socket.gaierror)
    assert opener.calls == []


def test_transport_error_from_the_opener_propagates(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a connection that times out
    opener.error = ImageHostError("connecting to 'pbs.twimg.com' timed out")
    # WHEN it is downloaded
    # THEN the opener's named error is what the task raises
    with pytest.raises(ImageHostError) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "connecting to 'pbs.twimg.com' timed out"


# ---------------------------------------------------------------- size cap


def test_announced_length_over_the_cap_is_refused_before_reading(
    make_settings: Callable[..., FetchSettings], resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a 1000-byte cap and a response announcing 1001 bytes
    settings = make_settings(MAX_IMAGE_BYTES="1000")
    reply = opener.serve(
        "pbs.twimg.com", "/media/a.jpg", Reply(200, {"Content-Length": "1001"}, [b"x" * 1001])
    )
    # WHEN it is downloaded
    # THEN it is refused without reading a byte
    with pytest.raises(ImageTooLarge) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "'pbs.twimg.com' announced 1001 bytes; the limit is 1000"
    assert reply.chunks_read == 0
    assert reply.closed is True


def test_streaming_stops_as_soon_as_the_cap_is_passed(
    make_settings: Callable[..., FetchSettings], resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a 10000-byte cap and an endless body of 4096-byte chunks with no length announced
    settings = make_settings(MAX_IMAGE_BYTES="10000")
    endless = itertools.repeat(b"\xff\xd8\xff" + b"\x00" * 4093)
    reply = opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(200, body=endless))
    # WHEN it is downloaded
    # THEN reading stops at the third chunk (12288 bytes), the first past the cap
    with pytest.raises(ImageTooLarge) as raised:
        download(URL, settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == "the image from 'pbs.twimg.com' exceeds the limit of 10000 bytes"
    assert reply.chunks_read == 3
    assert reply.closed is True


def test_understated_length_does_not_escape_the_cap(
    make_settings: Callable[..., FetchSettings], resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a response announcing 10 bytes but sending 2000, with a 1000-byte cap
    settings = make_settings(MAX_IMAGE_BYTES="1000")
    opener.serve(
        "pbs.twimg.com",
        "/media/a.jpg",
        Reply(200, {"Content-Length": "10"}, [b"\xff\xd8\xff" + b"\x00" * 997, b"\x00" * 1003]),
    )
    # WHEN it is downloaded
    # THEN the bytes, not the header, decide
    with pytest.raises(ImageTooLarge):
        download(URL, settings=settings, resolver=resolver, opener=opener)


def test_image_exactly_at_the_cap_is_accepted(
    make_settings: Callable[..., FetchSettings],
    resolver: FakeResolver,
    opener: FakeOpener,
    jpeg_bytes: bytes,
) -> None:
    # GIVEN a cap equal to the image's size
    settings = make_settings(MAX_IMAGE_BYTES=str(len(jpeg_bytes)))
    opener.serve(
        "pbs.twimg.com",
        "/media/a.jpg",
        Reply(200, {"Content-Length": str(len(jpeg_bytes))}, [jpeg_bytes]),
    )
    # WHEN it is downloaded
    image = download(URL, settings=settings, resolver=resolver, opener=opener)
    # THEN it is accepted whole
    assert image.body == jpeg_bytes


# ---------------------------------------------------------------- time budget


class SteppingClock:
    """A clock that advances by ``step`` seconds each time it is read."""

    def __init__(self, start: float, step: float) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        current = self.now
        self.now += self.step
        return current


def test_timeouts_shrink_to_the_remaining_budget(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener, jpeg_bytes: bytes
) -> None:
    # GIVEN 2 s left before the deadline
    opener.serve("pbs.twimg.com", "/media/a.jpg", Reply(200, body=[jpeg_bytes]))
    # WHEN it is downloaded
    download(
        URL,
        settings=settings,
        resolver=resolver,
        opener=opener,
        deadline=102.0,
        clock=SteppingClock(100.0, 0.0),
    )
    # THEN neither timeout outlasts the budget
    assert (opener.calls[0].connect_timeout, opener.calls[0].read_timeout) == (2.0, 2.0)


def test_no_budget_left_before_connecting_is_a_host_error(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a deadline already passed
    # WHEN it is downloaded
    # THEN it gives up without connecting
    with pytest.raises(ImageHostError) as raised:
        download(
            URL,
            settings=settings,
            resolver=resolver,
            opener=opener,
            deadline=100.0,
            clock=SteppingClock(100.0, 0.0),
        )
    assert str(raised.value) == "downloading from 'pbs.twimg.com' ran out of time"
    assert opener.calls == []


def test_slow_body_runs_out_of_budget_while_streaming(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN a clock that moves 1 s per read, 3 s of budget, and a body that trickles forever
    reply = opener.serve(
        "pbs.twimg.com", "/media/a.jpg", Reply(200, body=itertools.repeat(b"\xff"))
    )
    # WHEN it is downloaded
    # THEN it gives up at the third chunk, when the budget reaches zero, and closes the response
    with pytest.raises(ImageHostError) as raised:
        download(
            URL,
            settings=settings,
            resolver=resolver,
            opener=opener,
            deadline=103.0,
            clock=SteppingClock(100.0, 1.0),
        )
    assert str(raised.value) == "downloading from 'pbs.twimg.com' ran out of time"
    assert reply.chunks_read == 3
    assert reply.closed is True
