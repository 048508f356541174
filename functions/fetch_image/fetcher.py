"""Download one image under every safety rule and store it in S3.

Each hop (the first request and each redirect) goes through the same three gates, in order:
the URL rules, the address rules on every resolved address, then a pinned connection to one
of those addresses. The body is read in chunks and abandoned as soon as it passes the size
cap; its type is judged by its first bytes only.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from urllib.parse import urljoin

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import tweetlens_naming as naming
from common.messages import MAX_URL_LENGTH
from common.validation import summarize
from fetch_image.addresses import HostPort, check_addresses, parse_image_url
from fetch_image.errors import (
    BlockedUrl,
    ImageHostError,
    ImageNotFound,
    ImageTooLarge,
    ImageUnavailable,
    InvalidFetchRequest,
    UnsupportedImageType,
)
from fetch_image.observability import logger, tracer
from fetch_image.settings import FetchSettings
from fetch_image.transport import Opener, RawResponse, Resolver

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_REDIRECTS: Final = 3
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
NOT_FOUND_STATUSES: Final = frozenset({404, 410})
TRANSIENT_STATUSES: Final = frozenset({408, 429})
# S3's answers to a PutObject that say "not now": throttling (SlowDown, 503) and its own
# failures (InternalError, 500; a 5xx in general). The client's own retries (fetch_image.
# settings.S3_BOUNDS) are short, to fit the store margin; the state machine retries
# ImageHostError seconds later, which an S3 hiccup outlasts far more often. RequestTimeout
# (400) is S3 giving up on an upload that stalled. Any other refusal
# (AccessDenied, NoSuchBucket, a bad checksum) is a deployment or code fault that a retry
# cannot mend: it passes through as botocore raised it (a ClientError, named after its code)
# and ends the execution.
S3_TRANSIENT_CODES: Final = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
)

Clock = Callable[[], float]


class FetchRequest(BaseModel):
    """The task input the state machine sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    # S3 bucket naming rules (general purpose buckets).
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


class FetchResult(BaseModel):
    """The task output: where the image is and what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str
    content_type: Literal["image/jpeg", "image/png"]
    size: Annotated[int, Field(gt=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@dataclass(frozen=True)
class ImageType:
    extension: str
    content_type: Literal["image/jpeg", "image/png"]
    magic: bytes


JPEG: Final = ImageType("jpg", "image/jpeg", b"\xff\xd8\xff")
PNG: Final = ImageType("png", "image/png", b"\x89PNG\r\n\x1a\n")


@dataclass(frozen=True)
class DownloadedImage:
    body: bytes
    image_type: ImageType
    host: str
    redirects: int


def parse_request(event: object) -> FetchRequest:
    """The task input as a model; anything malformed is ``InvalidFetchRequest``."""
    try:
        return FetchRequest.model_validate(event)
    except ValidationError as error:
        # Field names and reasons only: the offending values may be long or sensitive.
        problems = summarize(error, root="input")
        raise InvalidFetchRequest(f"invalid fetch request: {problems}") from error


def sniff_image_type(body: bytes) -> ImageType:
    """JPEG or PNG by magic bytes; what the server claims in Content-Type is ignored."""
    for image_type in (JPEG, PNG):
        if body.startswith(image_type.magic):
            return image_type
    raise UnsupportedImageType(
        f"the {len(body)} bytes received are neither JPEG nor PNG (first bytes {body[:8].hex()})"
    )


def _remaining_seconds(deadline: float | None, clock: Clock, host: str) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - clock()
    if remaining <= 0:
        raise ImageHostError(f"downloading from {host!r} ran out of time")
    return remaining


def _raise_for_status(status: int, host: str) -> None:
    if status == 200:
        return
    if status in NOT_FOUND_STATUSES:
        raise ImageNotFound(f"{host!r} answered {status}: the image is gone")
    if status in TRANSIENT_STATUSES or 500 <= status <= 599:
        raise ImageHostError(f"{host!r} answered {status}")
    raise ImageUnavailable(f"{host!r} answered {status}")


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _read_capped(
    response: RawResponse, *, limit: int, host: str, deadline: float | None, clock: Clock
) -> bytes:
    announced = _content_length(response.headers)
    if announced is not None and announced > limit:
        raise ImageTooLarge(f"{host!r} announced {announced} bytes; the limit is {limit}")
    body = bytearray()
    for chunk in response.chunks:
        body += chunk
        if len(body) > limit:
            raise ImageTooLarge(f"the image from {host!r} exceeds the limit of {limit} bytes")
        _remaining_seconds(deadline, clock, host)
    return bytes(body)


# capture_response off: the image bytes must never be copied into a trace segment.
@tracer.capture_method(capture_response=False)
def download(
    url: str,
    *,
    settings: FetchSettings,
    resolver: Resolver,
    opener: Opener,
    deadline: float | None = None,
    clock: Clock = time.monotonic,
) -> DownloadedImage:
    """Follow the URL (and at most ``MAX_REDIRECTS`` redirects) to the bytes of an image.

    ``deadline`` is a ``clock()`` value after which the download gives up with
    ``ImageHostError``, so a slow host ends the attempt before the Lambda timeout does.
    """
    allowed: frozenset[HostPort] = settings.allowed_image_hosts
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        image_url = parse_image_url(current, allowed)
        host = image_url.host
        try:
            resolved = resolver(host, image_url.port)
        except (OSError, UnicodeError) as error:
            raise ImageHostError(f"DNS lookup of {host!r} failed") from error
        addresses = check_addresses(host, resolved, settings.extra_allowed_networks)
        remaining = _remaining_seconds(deadline, clock, host)
        budget = float("inf") if remaining is None else remaining
        response = opener(
            address=str(addresses[0]),
            port=image_url.port,
            host=host,
            target=image_url.target,
            connect_timeout=min(settings.connect_timeout_seconds, budget),
            read_timeout=min(settings.read_timeout_seconds, budget),
        )
        try:
            if response.status in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise ImageUnavailable(
                        f"{host!r} answered {response.status} without a Location"
                    )
                current = urljoin(current, location.strip())
                logger.info("Following redirect", hop=hop + 1, status=response.status, host=host)
                continue
            _raise_for_status(response.status, host)
            body = _read_capped(
                response, limit=settings.max_image_bytes, host=host, deadline=deadline, clock=clock
            )
        finally:
            response.close()
        return DownloadedImage(
            body=body, image_type=sniff_image_type(body), host=host, redirects=hop
        )
    raise BlockedUrl(f"more than {MAX_REDIRECTS} redirects")


def image_key(url: str, image_type: ImageType) -> str:
    """The S3 key of an image: the digest of the URL the task was given, not of a redirect."""
    return naming.image_key(url, image_type.extension)


@tracer.capture_method(capture_response=False)
def store(request: FetchRequest, image: DownloadedImage, s3: S3Client) -> FetchResult:
    """Write the image to S3 and describe it for the next states."""
    digest = hashlib.sha256(image.body)
    key = image_key(request.url, image.image_type)
    try:
        s3.put_object(
            Bucket=request.bucket,
            Key=key,
            Body=image.body,
            ContentType=image.image_type.content_type,
            # S3 recomputes the hash and refuses the upload if the bytes changed in transit.
            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
        )
    except ClientError as error:
        if not _s3_transient(error):
            raise
        code = error.response.get("Error", {}).get("Code", "")
        # ImageHostError is the one error name the Fetch Image state retries (its Retry block
        # in the ASL). A retry is safe: the task downloads again and writes the same key (the
        # URL's digest), whether or not S3 kept the first write.
        raise ImageHostError(f"storing the image in S3 failed for now: {code}") from error
    except (HTTPClientError, BotoConnectionError) as error:
        # A read or connect timeout, a reset or an unreachable endpoint, after the client's
        # own attempts: the same as a throttled write.
        raise ImageHostError(
            f"storing the image in S3 failed for now: {type(error).__name__}"
        ) from error
    return FetchResult(
        bucket=request.bucket,
        key=key,
        content_type=image.image_type.content_type,
        size=len(image.body),
        sha256=digest.hexdigest(),
    )


def _s3_transient(error: ClientError) -> bool:
    """Whether S3 refused the write for now (throttled or failing), not for good."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in S3_TRANSIENT_CODES or status >= 500


def fetch_to_s3(
    event: Any,
    *,
    settings: FetchSettings,
    resolver: Resolver,
    opener: Opener,
    s3: S3Client,
    deadline: float | None = None,
    clock: Clock = time.monotonic,
) -> FetchResult:
    """The whole task: validate the input, download safely, store, describe."""
    request = parse_request(event)
    image = download(
        request.url,
        settings=settings,
        resolver=resolver,
        opener=opener,
        deadline=deadline,
        clock=clock,
    )
    result = store(request, image, s3)
    # DEBUG: at Stage=prod every image's fetch is already told by the ImageFetched and
    # ImageBytes metrics, the result item's image_key and StoreResult's one line, and
    # CloudWatch Logs bills each byte per image; Stage=dev still shows it.
    logger.debug(
        "Image stored",
        host=image.host,
        redirects=image.redirects,
        key=result.key,
        size=result.size,
        content_type=result.content_type,
    )
    return result
