"""The S3 write of a fetched image failing: for now (retried by the state machine) or for good.

Fetch Image's Retry block retries ImageHostError only, matched by the error's class name, so
a throttled, failing or timed-out PutObject must surface under that name, and a refusal no
retry can mend (AccessDenied, NoSuchBucket) as itself. The S3 client is a real boto3 client
with the function's own bounded config; botocore's Stubber answers for S3, and a read timeout
is raised where the request would be sent: no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber
from fetch_testkit import FakeOpener, FakeResolver, Reply, load_fetch_event

from fetch_image import app
from fetch_image.errors import ImageHostError
from fetch_image.observability import metrics
from fetch_image.settings import S3_CONFIG, FetchSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ASL = Path(__file__).resolve().parents[3] / "statemachine" / "classify_image.asl.json"
IMAGE_PATH = "/media/GcTwL3nsAAAbCdE.jpg?format=jpg&name=large"


def fetch_image_retried_errors() -> set[str]:
    """Every error name a Retry of the Fetch Image state matches."""
    state = json.loads(ASL.read_text(encoding="utf-8"))["States"]["Fetch Image"]
    return {name for retry in state["Retry"] for name in retry["ErrorEquals"]}


@pytest.fixture
def s3(aws_credentials: None) -> S3Client:
    """A real S3 client with the function's config (fetch_image.settings.S3_CONFIG)."""
    return boto3.client("s3", region_name="us-east-1", config=S3_CONFIG)


@pytest.fixture
def handler(
    monkeypatch: pytest.MonkeyPatch,
    settings: FetchSettings,
    resolver: FakeResolver,
    opener: FakeOpener,
    s3: S3Client,
) -> Iterator[None]:
    """The handler wired to the fakes and the client."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
    monkeypatch.setattr(metrics, "namespace", "tweetlens")
    monkeypatch.setattr(app, "SETTINGS", settings)
    monkeypatch.setattr(app, "RESOLVER", resolver)
    monkeypatch.setattr(app, "OPENER", opener)
    monkeypatch.setattr(app, "s3_client", lambda: s3)
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def serving(opener: FakeOpener, jpeg_bytes: bytes) -> None:
    """The image host serving the sample event's JPEG, so the S3 write is reached."""
    opener.serve("pbs.twimg.com", IMAGE_PATH, Reply(200, body=[jpeg_bytes]))


def answered(s3: S3Client, code: str, status: int) -> Stubber:
    """S3 answering the one PutObject with ``code`` and ``status``."""
    stubber = Stubber(s3)
    stubber.add_client_error(
        "put_object",
        service_error_code=code,
        service_message="from the test",
        http_status_code=status,
    )
    stubber.activate()
    return stubber


@pytest.mark.usefixtures("handler", "serving")
@pytest.mark.parametrize(
    ("code", "status"),
    [("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503)],
    ids=["throttled", "internal-error", "unavailable"],
)
def test_s3_failing_for_now_is_retried_by_the_state_machine(
    lambda_context: Any, s3: S3Client, code: str, status: int
) -> None:
    # GIVEN S3 refusing the image's PutObject for now
    stubber = answered(s3, code, status)

    # WHEN the handler runs
    with pytest.raises(ImageHostError) as raised:
        app.lambda_handler(load_fetch_event("fetch_image_ok.json"), lambda_context)

    # THEN it fails with the error the Fetch Image state retries, saying what S3 answered
    assert str(raised.value) == f"storing the image in S3 failed for now: {code}"
    assert type(raised.value).__name__ in fetch_image_retried_errors()
    stubber.assert_no_pending_responses()


@pytest.mark.usefixtures("handler", "serving")
def test_s3_timing_out_is_retried_by_the_state_machine(
    lambda_context: Any, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 never answering the PutObject within the read timeout (botocore's backoff
    # between the client's attempts not slept, to keep the test instant)
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    attempts: list[str] = []

    def time_out(request: Any, **_: Any) -> None:
        attempts.append(request.method)
        raise ReadTimeoutError(endpoint_url=request.url)

    s3.meta.events.register("before-send.s3.PutObject", time_out)

    # WHEN the handler runs
    with pytest.raises(ImageHostError) as raised:
        app.lambda_handler(load_fetch_event("fetch_image_ok.json"), lambda_context)

    # THEN the client tried twice (its bounded config), then the handler failed with the error
    # the Fetch Image state retries
    assert attempts == ["PUT", "PUT"]
    assert str(raised.value) == "storing the image in S3 failed for now: ReadTimeoutError"
    assert type(raised.value).__name__ in fetch_image_retried_errors()


@pytest.mark.no_application_metrics
@pytest.mark.usefixtures("handler", "serving")
@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("NoSuchBucket", 404)],
    ids=["access-denied", "no-such-bucket"],
)
def test_s3_refusing_for_good_ends_the_execution(
    lambda_context: Any, s3: S3Client, code: str, status: int
) -> None:
    # GIVEN S3 refusing the image's PutObject in a way no retry mends
    stubber = answered(s3, code, status)

    # WHEN the handler runs
    with pytest.raises(ClientError) as raised:
        app.lambda_handler(load_fetch_event("fetch_image_ok.json"), lambda_context)

    # THEN the refusal passes through as itself (botocore's class named after the code, the
    # error name Lambda reports), a name the Fetch Image state does not retry
    assert raised.value.response["Error"]["Code"] == code
    assert type(raised.value).__name__ == code
    assert code not in fetch_image_retried_errors()
    stubber.assert_no_pending_responses()
