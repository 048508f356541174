"""Rekognition DetectLabels answered by a pluggable labeler that looks at the real image.

moto's ``detect_labels`` ignores the image. The replacement reads the image from the
emulator's S3 (``S3Object``) or the request (``Bytes``), asks the labeler, and maps
``LabelerError`` to the service error of the same name, so direct calls and the Step
Functions ``aws-sdk:rekognition:detectLabels`` integration see the same answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from moto.core.exceptions import JsonRESTError
from moto.rekognition.responses import RekognitionResponse
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from tweetlens.localcloud import taskclock
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.labelers import Labeler, LabelerError

logger = Logger(service="localcloud")

DEFAULT_MAX_LABELS = 1000
DEFAULT_MIN_CONFIDENCE = 55.0
LABEL_MODEL_VERSION = "3.0"


@dataclass(frozen=True)
class LabelRequest:
    """One DetectLabels call as the fault injector sees it."""

    source: str  # "s3://bucket/key" or "bytes:sha256:<hex>"
    sha256: str
    image: bytes
    max_labels: int
    min_confidence: float


FaultInjector = Callable[[LabelRequest], None]

# What DetectLabels answers when the account's transactions-per-second quota is exceeded
# (Rekognition API reference: "The number of requests exceeded your throughput limit").
QUOTA_ERROR_CODE = "ProvisionedThroughputExceededException"
QUOTA_ERROR_MESSAGE = "Provisioned rate exceeded"


class DetectLabelsQuota:
    """A transactions-per-second quota, enforced as a token bucket.

    ``tps`` tokens a second, at most ``burst`` saved up (default: one second's worth, at
    least 1; AWS does not publish its burst allowance). A call that finds no token is refused
    at once, before any work, and is not billed.
    """

    def __init__(
        self,
        tps: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not math.isfinite(tps) or tps <= 0:
            raise ValueError("the DetectLabels quota must be a positive number of requests/s")
        if burst is not None and burst < 1:
            raise ValueError("the DetectLabels burst must be at least 1")
        self.tps = tps
        self.burst = burst if burst is not None else max(1, math.floor(tps))
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._refilled_at = clock()

    def admit(self) -> bool:
        """Take a token if there is one."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.tps)
            self._refilled_at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class RekognitionHook:
    """Serves DetectLabels from ``labeler`` and counts what was labelled.

    ``quota`` (a ``DetectLabelsQuota``, or None for no quota) refuses calls beyond the
    account's requests per second with ``ProvisionedThroughputExceededException``, as the
    service does; ``latency_seconds`` is added to every admitted call, as the service's own
    processing time. Both may be changed at any time.
    """

    def __init__(
        self,
        labeler: Labeler,
        *,
        quota: DetectLabelsQuota | None = None,
        latency_seconds: float = 0.0,
    ) -> None:
        self.labeler = labeler
        self.fault_injector: FaultInjector | None = None
        self.quota = quota
        self.latency_seconds = _checked_latency(latency_seconds)
        self._lock = threading.Lock()
        self._by_source: Counter[str] = Counter()
        self._throttled = 0
        self._answered: Counter[str] = Counter()

    def set_latency(self, seconds: float) -> None:
        """Every admitted DetectLabels call takes at least ``seconds`` from now on."""
        self.latency_seconds = _checked_latency(seconds)

    def throttled(self) -> int:
        """Calls refused by ``quota`` (``ProvisionedThroughputExceededException``)."""
        with self._lock:
            return self._throttled

    def answered_by_source(self) -> dict[str, int]:
        """Calls answered with labels (what AWS bills), per source."""
        with self._lock:
            return dict(self._answered)

    def calls_by_source(self) -> dict[str, int]:
        """DetectLabels calls per ``s3://bucket/key`` (or ``bytes:sha256:…`` for inline bytes)."""
        with self._lock:
            return dict(self._by_source)

    def install(self, patches: PatchSet) -> None:
        hook = self

        def detect_labels(response: Any) -> str:
            # A Detect Labels task's call carries its task's clock: the wait for the labeler
            # is the local cloud's capacity, left out of the task's timeout (taskclock.py).
            with taskclock.serving(response.headers.get(taskclock.HEADER)):
                return hook.detect_labels(response.body, response.current_account, response.region)

        patches.replace(RekognitionResponse, "detect_labels", detect_labels)

    def detect_labels(self, body: str | bytes, account_id: str, region: str) -> str:
        try:
            params = json.loads(body or "{}")
        except ValueError as exc:
            raise JsonRESTError("InvalidParameterException", "Request body is not JSON") from exc
        image_spec = params.get("Image") or {}
        max_labels = int(params.get("MaxLabels", DEFAULT_MAX_LABELS))
        min_confidence = float(params.get("MinConfidence", DEFAULT_MIN_CONFIDENCE))
        if self.quota is not None and not self.quota.admit():
            with self._lock:
                self._throttled += 1
            raise JsonRESTError(QUOTA_ERROR_CODE, QUOTA_ERROR_MESSAGE)
        latency = self.latency_seconds
        if latency > 0:
            # The service's processing time: the call holds its connection, not the emulator.
            time.sleep(latency)
        source, image = self._image(image_spec, account_id, region)
        digest = hashlib.sha256(image).hexdigest()
        with self._lock:
            self._by_source[source] += 1
        request = LabelRequest(source, digest, image, max_labels, min_confidence)
        try:
            if self.fault_injector is not None:
                self.fault_injector(request)
            labels = self.labeler.detect_labels(
                image, max_labels=max_labels, min_confidence=min_confidence
            )
        except LabelerError as exc:
            logger.info("DetectLabels failed", source=source, code=exc.code)
            raise JsonRESTError(exc.code, exc.message) from exc
        except Exception as exc:
            # A labeler bug must look like the service's own failure (retried by the state
            # machine), never crash the emulator's Step Functions interpreter.
            logger.exception("The labeler failed", source=source)
            raise JsonRESTError("InternalServerError", "the local labeler failed") from exc
        with self._lock:
            self._answered[source] += 1
        logger.info("DetectLabels answered", source=source, labels=len(labels))
        return json.dumps({"Labels": labels, "LabelModelVersion": LABEL_MODEL_VERSION})

    @staticmethod
    def _image(spec: dict[str, Any], account_id: str, region: str) -> tuple[str, bytes]:
        if "S3Object" in spec:
            s3_object = spec["S3Object"]
            bucket, name = s3_object.get("Bucket"), s3_object.get("Name")
            if not bucket or not name:
                raise JsonRESTError("InvalidParameterException", "S3Object needs Bucket and Name")
            backend = s3_backends[account_id][get_partition(region)]
            try:
                key = backend.get_object(bucket, name, version_id=s3_object.get("Version"))
            except Exception:
                key = None
            if key is None:
                raise JsonRESTError(
                    "InvalidS3ObjectException",
                    "Unable to get object metadata from S3. Check object key, region and/or "
                    "access permissions.",
                )
            return f"s3://{bucket}/{name}", bytes(key.value)
        if "Bytes" in spec:
            try:
                image = base64.b64decode(spec["Bytes"], validate=True)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise JsonRESTError("InvalidImageFormatException", "Bytes is not base64") from exc
            return f"bytes:sha256:{hashlib.sha256(image).hexdigest()}", image
        raise JsonRESTError("InvalidParameterException", "Image needs S3Object or Bytes")


def _checked_latency(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("the DetectLabels latency must be zero or more seconds")
    return seconds
