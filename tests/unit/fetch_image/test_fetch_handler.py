"""The handler end to end with the sample events: moto S3, scripted DNS and HTTPS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fetch_testkit import (
    IMAGES_BUCKET,
    PBS_ADDRESS,
    FakeOpener,
    FakeResolver,
    Reply,
    load_fetch_event,
)

from common.messages import url_digest
from fetch_image import app
from fetch_image.errors import BlockedUrl, ImageNotFound, InvalidFetchRequest
from fetch_image.observability import metrics
from fetch_image.settings import FetchSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def handler(
    monkeypatch: pytest.MonkeyPatch,
    settings: FetchSettings,
    resolver: FakeResolver,
    opener: FakeOpener,
    s3: S3Client,
) -> Iterator[None]:
    """The handler wired to the fakes and moto, as the local cloud or a test would wire it."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
    monkeypatch.setattr(metrics, "namespace", "tweetlens")
    monkeypatch.setattr(app, "SETTINGS", settings)
    monkeypatch.setattr(app, "RESOLVER", resolver)
    monkeypatch.setattr(app, "OPENER", opener)
    monkeypatch.setattr(app, "s3_client", lambda: s3)
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.mark.usefixtures("handler")
def test_ok_event_stores_the_exact_bytes(
    lambda_context: Any,
    opener: FakeOpener,
    s3: S3Client,
    jpeg_bytes: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the sample event and pbs.twimg.com serving a JPEG (labelled as something else)
    event = load_fetch_event("fetch_image_ok.json")
    opener.serve(
        "pbs.twimg.com",
        "/media/GcTwL3nsAAAbCdE.jpg?format=jpg&name=large",
        Reply(200, {"Content-Type": "application/octet-stream"}, [jpeg_bytes]),
    )
    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)
    # THEN the image is in S3 under the URL's digest, byte for byte, and described exactly
    key = f"images/{url_digest(event['url'])}.jpg"
    assert result == {
        "bucket": IMAGES_BUCKET,
        "key": key,
        "content_type": "image/jpeg",
        "size": len(jpeg_bytes),
        "sha256": hashlib.sha256(jpeg_bytes).hexdigest(),
    }
    stored = s3.get_object(Bucket=IMAGES_BUCKET, Key=key)
    assert stored["Body"].read() == jpeg_bytes
    assert stored["ContentType"] == "image/jpeg"
    assert [call.address for call in opener.calls] == [PBS_ADDRESS]
    # AND the success metrics are published
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    fetched = [blob for blob in emitted if "ImageFetched" in blob]
    assert len(fetched) == 1
    assert (fetched[0]["ImageFetched"], fetched[0]["ImageBytes"]) == ([1.0], [len(jpeg_bytes)])


@pytest.mark.usefixtures("handler")
def test_png_is_stored_with_png_key(
    lambda_context: Any, opener: FakeOpener, s3: S3Client, png_bytes: bytes
) -> None:
    # GIVEN a PNG at a .jpg URL
    event = {"url": "https://pbs.twimg.com/media/b.jpg", "bucket": IMAGES_BUCKET}
    opener.serve("pbs.twimg.com", "/media/b.jpg", Reply(200, body=[png_bytes]))
    # WHEN the handler runs
    result = app.lambda_handler(event, lambda_context)
    # THEN the key and type follow the bytes
    assert result["key"] == f"images/{url_digest(event['url'])}.png"
    assert result["content_type"] == "image/png"
    stored = s3.get_object(Bucket=IMAGES_BUCKET, Key=result["key"])
    assert stored["Body"].read() == png_bytes


@pytest.mark.usefixtures("handler")
def test_blocked_event_raises_blocked_url_before_any_lookup(
    lambda_context: Any,
    resolver: FakeResolver,
    opener: FakeOpener,
    s3: S3Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the sample event aimed at the instance metadata service
    event = load_fetch_event("fetch_image_blocked.json")
    # WHEN the handler runs
    # THEN it raises BlockedUrl (the name the state machine sees), touching nothing
    with pytest.raises(BlockedUrl) as raised:
        app.lambda_handler(event, lambda_context)
    assert str(raised.value) == (
        "host '169.254.169.254' is an IP address literal (169.254.169.254); "
        "only host names are allowed"
    )
    assert resolver.calls == []
    assert opener.calls == []
    assert s3.list_objects_v2(Bucket=IMAGES_BUCKET)["KeyCount"] == 0
    # AND the failure is counted by error name
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    failed = [blob for blob in emitted if "ImageFetchFailed" in blob]
    assert [(blob["error"], blob["ImageFetchFailed"]) for blob in failed] == [("BlockedUrl", [1.0])]


@pytest.mark.usefixtures("handler")
def test_invalid_event_raises_invalid_fetch_request(lambda_context: Any) -> None:
    # GIVEN the sample event without a url
    event = load_fetch_event("fetch_image_invalid.json")
    # WHEN the handler runs
    # THEN the input itself is refused, naming the field
    with pytest.raises(InvalidFetchRequest) as raised:
        app.lambda_handler(event, lambda_context)
    assert str(raised.value) == "invalid fetch request: url: Field required"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"url": "https://pbs.twimg.com/a.jpg"},
            "invalid fetch request: bucket: Field required",
        ),
        (
            {"url": "https://pbs.twimg.com/a.jpg", "bucket": "Not_A_Bucket"},
            "invalid fetch request: bucket: String should match pattern "
            "'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'",
        ),
        (
            {"url": 42, "bucket": IMAGES_BUCKET},
            "invalid fetch request: url: Input should be a valid string",
        ),
        (
            {"url": "", "bucket": IMAGES_BUCKET},
            "invalid fetch request: url: String should have at least 1 character",
        ),
        (
            {"url": "https://pbs.twimg.com/a.jpg", "bucket": IMAGES_BUCKET, "extra": 1},
            "invalid fetch request: extra: Extra inputs are not permitted",
        ),
        (
            ["https://pbs.twimg.com/a.jpg"],
            "invalid fetch request: input: Input should be a valid dictionary or instance of "
            "FetchRequest",
        ),
    ],
)
@pytest.mark.usefixtures("handler")
def test_malformed_input_raises_invalid_fetch_request(
    event: Any, reason: str, lambda_context: Any
) -> None:
    # GIVEN a task input of the wrong shape
    # WHEN the handler runs
    # THEN it is InvalidFetchRequest with the field and the reason, not the value
    with pytest.raises(InvalidFetchRequest) as raised:
        app.lambda_handler(event, lambda_context)
    assert str(raised.value) == reason


@pytest.mark.usefixtures("handler")
def test_missing_image_raises_image_not_found(
    lambda_context: Any, opener: FakeOpener, s3: S3Client
) -> None:
    # GIVEN a deleted photo
    event = load_fetch_event("fetch_image_ok.json")
    opener.serve("pbs.twimg.com", "/media/GcTwL3nsAAAbCdE.jpg?format=jpg&name=large", Reply(404))
    # WHEN the handler runs
    # THEN it raises ImageNotFound and stores nothing
    with pytest.raises(ImageNotFound):
        app.lambda_handler(event, lambda_context)
    assert s3.list_objects_v2(Bucket=IMAGES_BUCKET)["KeyCount"] == 0


@pytest.mark.usefixtures("handler")
def test_handler_keeps_time_back_for_the_store(
    lambda_context: Any, opener: FakeOpener, jpeg_bytes: bytes
) -> None:
    # GIVEN an invocation with 8 s left (6 s are kept back for S3 and the response:
    # fetch_image.settings.STORE_MARGIN_SECONDS)
    lambda_context.remaining_time_in_millis = 8_000
    opener.serve(
        "pbs.twimg.com",
        "/media/GcTwL3nsAAAbCdE.jpg?format=jpg&name=large",
        Reply(200, body=[jpeg_bytes]),
    )
    # WHEN the handler runs
    app.lambda_handler(load_fetch_event("fetch_image_ok.json"), lambda_context)
    # THEN the download may take at most about 2 s
    assert 1.5 < opener.calls[0].read_timeout <= 2.0
    assert 1.5 < opener.calls[0].connect_timeout <= 2.0
