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
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from moto.core.exceptions import JsonRESTError
from moto.rekognition.responses import RekognitionResponse
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

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


class RekognitionHook:
    """Serves DetectLabels from ``labeler`` and counts what was labelled."""

    def __init__(self, labeler: Labeler) -> None:
        self.labeler = labeler
        self.fault_injector: FaultInjector | None = None
        self._lock = threading.Lock()
        self._by_source: Counter[str] = Counter()

    def calls_by_source(self) -> dict[str, int]:
        """DetectLabels calls per ``s3://bucket/key`` (or ``bytes:sha256:…`` for inline bytes)."""
        with self._lock:
            return dict(self._by_source)

    def install(self, patches: PatchSet) -> None:
        hook = self

        def detect_labels(response: Any) -> str:
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
