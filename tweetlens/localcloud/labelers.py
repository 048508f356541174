"""Image labelers that stand in for Amazon Rekognition ``DetectLabels`` in the local cloud.

``OpenCvLabeler`` really looks at the pixels: it runs the Haar cascades that ship inside
OpenCV (frontal cat faces, frontal human faces) and answers with labels in the exact shape
of Rekognition's ``Labels`` list. It recognises far less than Rekognition (see the class
docstring), but it is honest: a photo of a coffee cup gets no ``Cat``.

It enforces DetectLabels' input rules with the service's own error names, so a pipeline that
handles those errors can be exercised without an AWS account.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from tweetlens.localcloud import taskclock

# OpenCV and numpy (about 0.2 s to import) are imported where a picture is looked at: a local
# cloud that never labels one (most `tweetlens invoke` calls) does without them.
if TYPE_CHECKING:
    from cv2.typing import MatLike

# Rekognition's documented limits for DetectLabels.
MAX_S3_OBJECT_BYTES: Final = 15 * 1024 * 1024
MIN_IMAGE_SIDE_PX: Final = 80
MAX_LABELS_LIMIT: Final = 1000

_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# Not a Rekognition rule: a guard for the laptop. A 15 MB PNG can declare 30000 x 30000
# pixels and would take gigabytes to decode; no photo from X comes near this.
MAX_DECODED_PIXELS: Final = 80_000_000
# JPEG start-of-frame markers (SOF0-SOF15 except DHT, JPG and DAC), which carry the size.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

# Detection runs on a bounded copy so a 12-megapixel upload costs the same as a thumbnail;
# at 320 px every shipped photo gets its right answer across nearby scale/pad settings.
_WORK_MAX_SIDE_PX: Final = 320
# Pet photos are mostly close-ups whose ears or chin are cut off by the frame, and a cascade
# only fires when the whole face fits its window: scanning a padded copy finds those faces.
_PAD_RATIO: Final = 0.3
# Cats and people tilt their heads; the cascades are trained on upright faces.
_ROTATIONS_DEGREES: Final = (-8.0, 0.0, 8.0)
_SCALE_FACTOR: Final = 1.1
_MIN_NEIGHBORS: Final = 4
_MIN_FACE_RATIO: Final = 0.1
# Detections sharing this much of the smaller box are one face seen twice (at two rotations,
# or once tight and once with the hair around it).
_SAME_OBJECT_OVERLAP: Final = 0.5
_CONFIDENCE_FLOOR: Final = 50.0
_CONFIDENCE_SPAN: Final = 49.9


class LabelerError(Exception):
    """A DetectLabels service error; ``code`` is Rekognition's error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# At interpreter exit, how long to wait for a thread still inside OpenCV (one cascade pass on
# the largest image the labeler decodes takes a few seconds on a loaded core).
EXIT_WAIT_SECONDS: Final = 30.0


class _NativeGate:
    """Keeps threads out of OpenCV once the interpreter is exiting, and waits for those inside.

    The emulator labels images on daemon threads (moto's request handlers), and a run that
    stops with work in flight exits while some are still inside OpenCV with the GIL released.
    Python ends such a thread with ``pthread_exit`` when it asks for the GIL back; the forced
    unwind through OpenCV's C++ frames calls ``std::terminate``, and the process dies with
    SIGABRT (status 134, "terminate called without an active exception") instead of its own
    exit status. An ``atexit`` hook runs before daemon threads are stopped: it closes the gate
    and waits for the threads inside, and any thread that arrives later gets a service error
    in Python instead of entering C++.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._inside = 0
        self._closed = False

    @contextmanager
    def native_call(self) -> Iterator[None]:
        with self._changed:
            if self._closed:
                raise LabelerError("InternalServerError", "the local labeler is shutting down")
            self._inside += 1
        try:
            yield
        finally:
            with self._changed:
                self._inside -= 1
                self._changed.notify_all()

    def close(self, timeout: float = EXIT_WAIT_SECONDS) -> bool:
        """Let no new call in; wait for the calls inside. False if some are still inside."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._inside == 0, timeout=timeout)


_NATIVE = _NativeGate()
atexit.register(_NATIVE.close)


class Labeler(Protocol):
    """Anything that answers DetectLabels' ``Labels`` list for image bytes."""

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class _Taxonomy:
    """One detectable object and the labels Rekognition reports with it."""

    name: str
    parents: tuple[str, ...]
    aliases: tuple[str, ...]
    category: str
    # Extra labels Rekognition emits beside the object (a face implies a head), without boxes.
    companions: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class _Detector:
    """A Haar cascade, the object it finds and how its level weight maps to confidence."""

    cascade_file: str
    taxonomy: _Taxonomy
    # Below this cascade level weight a detection is noise. Measured on the shipped photos
    # with the settings above: Chelsea's face scores 3.3, false cat faces stay under 0.2;
    # the astronaut's face scores 5.6-6.9, false human faces stay under 4.3.
    min_level_weight: float
    # Level weight at which confidence has covered 63 % of the way from 50 to 99.9.
    weight_scale: float


_CAT: Final = _Taxonomy(
    name="Cat",
    parents=("Animal", "Mammal", "Pet"),
    aliases=(),
    category="Animals and Pets",
    companions=(),
)
_PERSON: Final = _Taxonomy(
    name="Person",
    parents=(),
    aliases=("Human",),
    category="Person Description",
    companions=(("Face", ("Head", "Person")), ("Head", ("Person",))),
)
# Parent and companion labels: Rekognition's taxonomy for the labels above.
_LABEL_PARENTS: Final[dict[str, tuple[str, ...]]] = {
    "Animal": (),
    "Mammal": ("Animal",),
    "Pet": ("Animal",),
}
_LABEL_CATEGORY: Final[dict[str, str]] = {
    "Animal": "Animals and Pets",
    "Mammal": "Animals and Pets",
    "Pet": "Animals and Pets",
    "Face": "Person Description",
    "Head": "Person Description",
}

_DETECTORS: Final = (
    _Detector("haarcascade_frontalcatface_extended.xml", _CAT, 2.0, 2.0),
    _Detector("haarcascade_frontalcatface.xml", _CAT, 2.0, 2.0),
    _Detector("haarcascade_frontalface_default.xml", _PERSON, 5.0, 3.0),
)


@dataclass(frozen=True)
class _Box:
    """An axis-aligned box in original-image pixels."""

    left: float
    top: float
    right: float
    bottom: float

    def area(self) -> float:
        return max(0.0, self.right - self.left) * max(0.0, self.bottom - self.top)

    def overlap(self, other: _Box) -> float:
        """Intersection over the smaller box's area."""
        inter = _Box(
            max(self.left, other.left),
            max(self.top, other.top),
            min(self.right, other.right),
            min(self.bottom, other.bottom),
        ).area()
        smaller = min(self.area(), other.area())
        return inter / smaller if smaller > 0 else 0.0


@dataclass(frozen=True)
class _Detection:
    taxonomy: _Taxonomy
    box: _Box
    confidence: float


def _image_rejection(image: bytes) -> LabelerError | None:
    """The error Rekognition gives for these bytes before looking at pixels, if any."""
    if len(image) > MAX_S3_OBJECT_BYTES:
        return LabelerError(
            "ImageTooLargeException",
            f"Image size {len(image)} bytes exceeds the limit of {MAX_S3_OBJECT_BYTES} bytes",
        )
    if not (image.startswith(_JPEG_MAGIC) or image.startswith(_PNG_MAGIC)):
        return LabelerError(
            "InvalidImageFormatException", "Request has unsupported image format: not JPEG or PNG"
        )
    return None


def _declared_size(image: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR or a JPEG's start-of-frame, without decoding."""
    if image.startswith(_PNG_MAGIC):
        if len(image) < 24 or image[12:16] != b"IHDR":
            return None
        return int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    position = 2
    while position + 9 <= len(image):
        if image[position] != 0xFF:
            return None
        marker = image[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in _JPEG_SOF_MARKERS:
            height = int.from_bytes(image[position + 5 : position + 7], "big")
            width = int.from_bytes(image[position + 7 : position + 9], "big")
            return width, height
        position += 2 + int.from_bytes(image[position + 2 : position + 4], "big")
    return None


def _validate_parameters(max_labels: int, min_confidence: float) -> None:
    if not 0 <= max_labels <= MAX_LABELS_LIMIT:
        raise LabelerError(
            "InvalidParameterException",
            f"MaxLabels must be between 0 and {MAX_LABELS_LIMIT}, got {max_labels}",
        )
    if not (math.isfinite(min_confidence) and 0.0 <= min_confidence <= 100.0):
        raise LabelerError(
            "InvalidParameterException",
            f"MinConfidence must be between 0 and 100, got {min_confidence}",
        )


def _decode_gray(image: bytes) -> MatLike:
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    declared = _declared_size(image)
    if declared is not None and declared[0] * declared[1] > MAX_DECODED_PIXELS:
        raise LabelerError(
            "ImageTooLargeException",
            f"Image is {declared[0]}x{declared[1]} pixels, more than the local labeler "
            f"decodes ({MAX_DECODED_PIXELS} pixels)",
        )
    # Decoding in colour then converting gives JPEG and PNG of the same picture the same
    # grey pixels; libjpeg's own greyscale decode differs slightly, enough to move a cascade.
    pixels = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.size == 0:
        raise LabelerError("InvalidImageFormatException", "Request has invalid image format")
    pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE_PX:
        raise LabelerError(
            "InvalidImageFormatException",
            f"Image is {width}x{height} pixels, below the minimum 80 pixels on each side",
        )
    return pixels


@contextmanager
def _entered(lock: threading.Lock) -> Iterator[None]:
    """Hold ``lock``; a Step Functions task whose call waits for it has its clock paused
    meanwhile (Rekognition does not queue calls: the wait is the local labeler's, taskclock.py).
    Only the wait is left out: the labelling under the lock counts."""
    if not lock.acquire(blocking=False):
        with taskclock.waiting_for_capacity():
            lock.acquire()
    try:
        yield
    finally:
        lock.release()


class OpenCvLabeler:
    """DetectLabels on the local machine, from OpenCV's bundled Haar cascades.

    Recognises frontal cat faces (``Cat`` with parents ``Animal``, ``Mammal``, ``Pet``) and
    frontal human faces (``Person``, with ``Face`` and ``Head``). It cannot see dogs, cats
    from the side or behind, people without a visible frontal face, objects or scenes: for
    those it answers an empty list. Confidence comes from the cascade's level weight, mapped
    monotonically into 50-99.9; the same bytes always give the same answer.
    """

    def __init__(self, cascade_dir: Path | None = None) -> None:
        import cv2  # noqa: PLC0415
        import cv2.data  # noqa: PLC0415

        directory = cascade_dir if cascade_dir is not None else Path(cv2.data.haarcascades)
        self._cascades: list[tuple[_Detector, Any]] = []
        # A CascadeClassifier is not thread-safe, and the emulator serves requests on many
        # threads: concurrent detectMultiScale3 calls corrupt its scale data.
        self._detect_lock = threading.Lock()
        for detector in _DETECTORS:
            path = directory / detector.cascade_file
            cascade = cv2.CascadeClassifier(str(path))
            if cascade.empty():
                raise FileNotFoundError(f"cannot load Haar cascade {path}")
            self._cascades.append((detector, cascade))

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]:
        """Return Rekognition's ``Labels`` list for JPEG or PNG bytes.

        Raises ``LabelerError`` with ``InvalidParameterException``,
        ``ImageTooLargeException`` or ``InvalidImageFormatException``, as the service does.
        """
        _validate_parameters(max_labels, min_confidence)
        rejection = _image_rejection(image)
        if rejection is not None:
            raise rejection
        with _NATIVE.native_call():
            gray = _decode_gray(image)
        # The gate is entered under the lock: threads queued for the cascades are not inside
        # OpenCV yet, so exit waits for one detection at most, not for the whole queue.
        with _entered(self._detect_lock), _NATIVE.native_call():
            detections = self._detect(gray)
        labels = _labels_from(detections, gray.shape[1], gray.shape[0])
        kept = [label for label in labels if label["Confidence"] >= min_confidence]
        return kept[:max_labels]

    def _detect(self, gray: MatLike) -> list[_Detection]:
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        height, width = gray.shape[:2]
        scale = min(1.0, _WORK_MAX_SIDE_PX / max(height, width))
        work = (
            cv2.resize(
                gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
            if scale < 1.0
            else gray
        )
        work_h, work_w = work.shape[:2]
        pad = round(min(work_h, work_w) * _PAD_RATIO)
        min_side = max(24, round(min(work_h, work_w) * _MIN_FACE_RATIO))
        found: list[_Detection] = []
        for angle in _ROTATIONS_DEGREES:
            rotation = cv2.getRotationMatrix2D((work_w / 2, work_h / 2), angle, 1.0)
            turned = cv2.warpAffine(
                work, rotation, (work_w, work_h), borderMode=cv2.BORDER_REPLICATE
            )
            padded = cv2.copyMakeBorder(turned, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            back = cv2.invertAffineTransform(rotation)
            for detector, cascade in self._cascades:
                rects, _levels, weights = cascade.detectMultiScale3(
                    padded,
                    scaleFactor=_SCALE_FACTOR,
                    minNeighbors=_MIN_NEIGHBORS,
                    minSize=(min_side, min_side),
                    outputRejectLevels=True,
                )
                for rect, weight in zip(rects, np.ravel(weights), strict=True):
                    if float(weight) < detector.min_level_weight:
                        continue
                    box = _to_original(
                        rect, pad=pad, back=back, scale=scale, width=width, height=height
                    )
                    confidence = _confidence(float(weight), detector.weight_scale)
                    found.append(_Detection(detector.taxonomy, box, confidence))
        return _merge(found)


def _to_original(
    rect: MatLike,
    *,
    pad: int,
    back: MatLike,
    scale: float,
    width: int,
    height: int,
) -> _Box:
    """Map a detection in the padded, rotated work image back to original pixels."""
    import numpy as np  # noqa: PLC0415

    x, y, w, h = (float(v) for v in rect)
    x, y = x - pad, y - pad
    corners = np.array([[x, y, 1.0], [x + w, y, 1.0], [x, y + h, 1.0], [x + w, y + h, 1.0]])
    mapped = corners @ back.T / scale
    return _Box(
        left=min(max(float(mapped[:, 0].min()), 0.0), float(width)),
        top=min(max(float(mapped[:, 1].min()), 0.0), float(height)),
        right=min(max(float(mapped[:, 0].max()), 0.0), float(width)),
        bottom=min(max(float(mapped[:, 1].max()), 0.0), float(height)),
    )


def _confidence(weight: float, weight_scale: float) -> float:
    return round(_CONFIDENCE_FLOOR + _CONFIDENCE_SPAN * (1.0 - math.exp(-weight / weight_scale)), 4)


def _merge(found: list[_Detection]) -> list[_Detection]:
    """Keep the most confident of each group of overlapping detections of one object."""
    ordered = sorted(
        found,
        key=lambda d: (-d.confidence, d.taxonomy.name, d.box.left, d.box.top),
    )
    kept: list[_Detection] = []
    for detection in ordered:
        if all(
            other.taxonomy.name != detection.taxonomy.name
            or other.box.overlap(detection.box) < _SAME_OBJECT_OVERLAP
            for other in kept
        ):
            kept.append(detection)
    return kept


def _label(
    name: str, parents: tuple[str, ...], aliases: tuple[str, ...], category: str
) -> dict[str, Any]:
    """An empty label; detections raise its confidence and add instances."""
    return {
        "Name": name,
        "Confidence": 0.0,
        "Instances": [],
        "Parents": [{"Name": parent} for parent in parents],
        "Aliases": [{"Name": alias} for alias in aliases],
        "Categories": [{"Name": category}],
    }


def _labels_from(detections: list[_Detection], width: int, height: int) -> list[dict[str, Any]]:
    """Group detections into Rekognition labels, ancestors included, most confident first."""
    labels: dict[str, dict[str, Any]] = {}
    for detection in detections:
        taxonomy = detection.taxonomy
        box = detection.box
        instance = {
            "BoundingBox": {
                "Width": round((box.right - box.left) / width, 6),
                "Height": round((box.bottom - box.top) / height, 6),
                "Left": round(box.left / width, 6),
                "Top": round(box.top / height, 6),
            },
            "Confidence": detection.confidence,
        }
        label = labels.setdefault(
            taxonomy.name,
            _label(taxonomy.name, taxonomy.parents, taxonomy.aliases, taxonomy.category),
        )
        label["Instances"].append(instance)
        label["Confidence"] = max(label["Confidence"], detection.confidence)
        # A parent is at least as likely as its child, so it carries the child's confidence.
        for name in taxonomy.parents:
            parent = labels.setdefault(
                name,
                _label(name, _LABEL_PARENTS[name], (), _LABEL_CATEGORY[name]),
            )
            parent["Confidence"] = max(parent["Confidence"], detection.confidence)
        for name, parents in taxonomy.companions:
            companion = labels.setdefault(name, _label(name, parents, (), _LABEL_CATEGORY[name]))
            companion["Confidence"] = max(companion["Confidence"], detection.confidence)
    for label in labels.values():
        label["Instances"].sort(key=lambda inst: (-inst["Confidence"], inst["BoundingBox"]["Left"]))
    return sorted(labels.values(), key=lambda label: (-label["Confidence"], label["Name"]))


class PictureCachingLabeler:
    """Wraps a labeler: the same picture gets the answer computed for it once.

    The key is the decoded pixels (with the request's MaxLabels and MinConfidence), so two
    files of one picture that differ only in metadata share an answer, while any other
    picture is looked at afresh. For benchmarks: the local labeler spends about a second of
    CPU on a photo, serialised, which would be measured instead of the service's latency
    (inject that with ``LocalCloud(detect_labels_latency=…)``). Errors are never cached.
    """

    def __init__(self, inner: Labeler) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._answers: dict[tuple[bytes, int, float], list[dict[str, Any]]] = {}
        self.misses = 0

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]:
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        with _NATIVE.native_call():
            pixels = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_COLOR)
        if pixels is None or pixels.size == 0:
            return self._inner.detect_labels(
                image, max_labels=max_labels, min_confidence=min_confidence
            )
        key = (hashlib.sha256(pixels.tobytes()).digest(), max_labels, min_confidence)
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None:
            return copy.deepcopy(cached)
        labels = self._inner.detect_labels(
            image, max_labels=max_labels, min_confidence=min_confidence
        )
        with self._lock:
            self._answers[key] = copy.deepcopy(labels)
            self.misses += 1
        return labels


class DeferredLabeler:
    """A labeler built on its first call: a cloud that may never label a picture (one
    ``tweetlens invoke``) neither imports OpenCV nor loads its cascades."""

    def __init__(self, build: Callable[[], Labeler]) -> None:
        self._build = build
        self._inner: Labeler | None = None
        self._lock = threading.Lock()

    def detect_labels(
        self, image: bytes, *, max_labels: int, min_confidence: float
    ) -> list[dict[str, Any]]:
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            inner = self._inner
        return inner.detect_labels(image, max_labels=max_labels, min_confidence=min_confidence)
