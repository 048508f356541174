"""Fixtures for FetchImageFunction: a scripted resolver and opener, real image bytes, moto S3.

No test here touches the network: the resolver and opener stand in for DNS and HTTPS, and
record every call so a test can prove a refused URL never reached either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import cv2
import numpy as np
import pytest
from fetch_testkit import (
    EXAMPLE_ADDRESS,
    IMAGES_BUCKET,
    PBS_ADDRESS,
    TEST_ENVIRONMENT,
    FakeOpener,
    FakeResolver,
)
from moto import mock_aws

from fetch_image.settings import FetchSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _test_picture() -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A 96 x 96 colour gradient: above Rekognition's 80 px minimum, a few KB encoded."""
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    picture = np.zeros((96, 96, 3), dtype=np.uint8)
    picture[:, :, 0] = ramp[np.newaxis, :]
    picture[:, :, 1] = ramp[:, np.newaxis]
    picture[:, :, 2] = 128
    return picture


def _encode(extension: str) -> bytes:
    ok, encoded = cv2.imencode(extension, _test_picture())
    assert ok
    return bytes(encoded.tobytes())


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return _encode(".jpg")


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return _encode(".png")


@pytest.fixture
def settings() -> FetchSettings:
    return FetchSettings.from_environ(TEST_ENVIRONMENT)


@pytest.fixture
def make_settings() -> Callable[..., FetchSettings]:
    """Settings with some variables changed, given as the environment would give them."""

    def make(**overrides: str) -> FetchSettings:
        return FetchSettings.from_environ({**TEST_ENVIRONMENT, **overrides})

    return make


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(
        answers={"pbs.twimg.com": [PBS_ADDRESS], "images.example.org": [EXAMPLE_ADDRESS]}
    )


@pytest.fixture
def opener() -> FakeOpener:
    return FakeOpener()


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[S3Client]:
    """An in-process moto S3 with the images bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=IMAGES_BUCKET)
        yield client
