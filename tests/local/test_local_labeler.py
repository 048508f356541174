"""OpenCvLabeler: what it sees on each shipped photo, and DetectLabels' input rules."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.local.conftest import photo
from tweetlens.localcloud.labelers import MAX_S3_OBJECT_BYTES, LabelerError, OpenCvLabeler


def _names(labels: list[dict[str, object]]) -> set[object]:
    return {label["Name"] for label in labels}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chelsea", {"Animal", "Cat", "Mammal", "Pet"}),
        ("astronaut", {"Face", "Head", "Person"}),
        ("coffee", set()),
        ("rocket", set()),
    ],
)
def test_shipped_photo_gets_its_labels(
    labeler: OpenCvLabeler, name: str, expected: set[str]
) -> None:
    # GIVEN a shipped photo
    image = photo(name)

    # WHEN it is labelled with no confidence floor
    labels = labeler.detect_labels(image, max_labels=100, min_confidence=0)

    # THEN exactly the expected labels come back
    assert _names(labels) == expected


def test_cat_label_has_rekognition_shape(labeler: OpenCvLabeler) -> None:
    # GIVEN the cat photo
    # WHEN it is labelled
    labels = labeler.detect_labels(photo("chelsea"), max_labels=100, min_confidence=55)

    # THEN Cat carries Rekognition's fields, its parents and one instance box in ratios
    cat = next(label for label in labels if label["Name"] == "Cat")
    assert set(cat) == {"Name", "Confidence", "Instances", "Parents", "Aliases", "Categories"}
    assert cat["Parents"] == [{"Name": "Animal"}, {"Name": "Mammal"}, {"Name": "Pet"}]
    assert cat["Aliases"] == []
    assert cat["Categories"] == [{"Name": "Animals and Pets"}]
    assert 50.0 <= cat["Confidence"] <= 99.9
    assert len(cat["Instances"]) == 1
    instance = cat["Instances"][0]
    assert instance["Confidence"] == cat["Confidence"]
    box = instance["BoundingBox"]
    assert set(box) == {"Width", "Height", "Left", "Top"}
    assert all(0.0 <= box[key] <= 1.0 for key in box)
    assert box["Left"] + box["Width"] <= 1.0 + 1e-6
    assert box["Top"] + box["Height"] <= 1.0 + 1e-6
    # Parent labels carry their child's confidence and no boxes.
    animal = next(label for label in labels if label["Name"] == "Animal")
    assert animal["Confidence"] == cat["Confidence"]
    assert animal["Instances"] == []


def test_person_label_follows_rekognition_taxonomy(labeler: OpenCvLabeler) -> None:
    # GIVEN the astronaut photo
    # WHEN it is labelled
    labels = labeler.detect_labels(photo("astronaut"), max_labels=100, min_confidence=0)

    # THEN Person has the alias Human and one face box; Face sits under Head and Person
    by_name = {label["Name"]: label for label in labels}
    assert by_name["Person"]["Parents"] == []
    assert by_name["Person"]["Aliases"] == [{"Name": "Human"}]
    assert by_name["Person"]["Categories"] == [{"Name": "Person Description"}]
    assert len(by_name["Person"]["Instances"]) == 1
    assert by_name["Face"]["Parents"] == [{"Name": "Head"}, {"Name": "Person"}]
    assert by_name["Head"]["Parents"] == [{"Name": "Person"}]


def test_labels_are_sorted_by_confidence_and_cut_to_max_labels(labeler: OpenCvLabeler) -> None:
    # GIVEN the cat photo, whose four labels share one confidence
    # WHEN at most two labels are asked for
    labels = labeler.detect_labels(photo("chelsea"), max_labels=2, min_confidence=0)

    # THEN the two first by (confidence desc, name) come back
    assert [label["Name"] for label in labels] == ["Animal", "Cat"]


def test_labels_below_min_confidence_are_dropped(labeler: OpenCvLabeler) -> None:
    # GIVEN the cat photo
    # WHEN the confidence floor is above any cascade's confidence
    labels = labeler.detect_labels(photo("chelsea"), max_labels=10, min_confidence=99.95)

    # THEN nothing comes back
    assert labels == []


def test_same_bytes_give_same_answer(labeler: OpenCvLabeler) -> None:
    # GIVEN the astronaut photo, labelled once
    first = labeler.detect_labels(photo("astronaut"), max_labels=10, min_confidence=0)

    # WHEN it is labelled again by a fresh labeler
    second = OpenCvLabeler().detect_labels(photo("astronaut"), max_labels=10, min_confidence=0)

    # THEN the answers are identical
    assert first == second


def test_png_is_accepted(labeler: OpenCvLabeler) -> None:
    # GIVEN the cat photo re-encoded as PNG
    pixels = cv2.imdecode(np.frombuffer(photo("chelsea"), np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    ok, png = cv2.imencode(".png", pixels)
    assert ok

    # WHEN it is labelled
    labels = labeler.detect_labels(png.tobytes(), max_labels=10, min_confidence=0)

    # THEN it is still a cat
    assert "Cat" in _names(labels)


def _error(labeler: OpenCvLabeler, image: bytes, **kwargs: float) -> LabelerError:
    params: dict[str, float] = {"max_labels": 10, "min_confidence": 55.0, **kwargs}
    with pytest.raises(LabelerError) as caught:
        labeler.detect_labels(
            image, max_labels=int(params["max_labels"]), min_confidence=params["min_confidence"]
        )
    return caught.value


def test_gif_is_invalid_image_format(labeler: OpenCvLabeler) -> None:
    # GIVEN GIF bytes (Rekognition takes JPEG and PNG only)
    # WHEN labelled / THEN InvalidImageFormatException
    error = _error(labeler, b"GIF89a" + b"\x00" * 200)
    assert error.code == "InvalidImageFormatException"
    assert error.message == "Request has unsupported image format: not JPEG or PNG"


def test_undecodable_jpeg_is_invalid_image_format(labeler: OpenCvLabeler) -> None:
    # GIVEN bytes that start like a JPEG and are garbage after
    # WHEN labelled / THEN InvalidImageFormatException
    error = _error(labeler, b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20)
    assert error.code == "InvalidImageFormatException"
    assert error.message == "Request has invalid image format"


def test_image_under_80_pixels_is_invalid_image_format(labeler: OpenCvLabeler) -> None:
    # GIVEN a 79x120 PNG
    ok, png = cv2.imencode(".png", np.full((120, 79, 3), 127, np.uint8))
    assert ok

    # WHEN labelled / THEN InvalidImageFormatException naming the minimum
    error = _error(labeler, png.tobytes())
    assert error.code == "InvalidImageFormatException"
    assert error.message == "Image is 79x120 pixels, below the minimum 80 pixels on each side"


def test_image_over_15_mb_is_too_large(labeler: OpenCvLabeler) -> None:
    # GIVEN a JPEG-prefixed object one byte over Rekognition's S3 object limit
    image = b"\xff\xd8\xff\xe0" + b"\x00" * (MAX_S3_OBJECT_BYTES - 3)

    # WHEN labelled / THEN ImageTooLargeException
    error = _error(labeler, image)
    assert error.code == "ImageTooLargeException"
    assert error.message == "Image size 15728641 bytes exceeds the limit of 15728640 bytes"


def test_decompression_bomb_is_refused_before_decoding(labeler: OpenCvLabeler) -> None:
    # GIVEN a small PNG whose header declares 10000 x 10000 pixels
    ok, png = cv2.imencode(".png", np.full((100, 100, 3), 127, np.uint8))
    assert ok
    image = bytearray(png.tobytes())
    image[16:24] = (10_000).to_bytes(4, "big") + (10_000).to_bytes(4, "big")

    # WHEN labelled / THEN ImageTooLargeException, from the header alone
    error = _error(labeler, bytes(image))
    assert error.code == "ImageTooLargeException"
    assert error.message == (
        "Image is 10000x10000 pixels, more than the local labeler decodes (80000000 pixels)"
    )


@pytest.mark.parametrize("max_labels", [-1, 1001])
def test_max_labels_out_of_range_is_invalid_parameter(
    labeler: OpenCvLabeler, max_labels: int
) -> None:
    # GIVEN a valid photo and MaxLabels outside 0..1000
    # WHEN labelled / THEN InvalidParameterException
    error = _error(labeler, photo("coffee"), max_labels=max_labels)
    assert error.code == "InvalidParameterException"
    assert error.message == f"MaxLabels must be between 0 and 1000, got {max_labels}"


@pytest.mark.parametrize("min_confidence", [-0.5, 100.5, math.nan])
def test_min_confidence_out_of_range_is_invalid_parameter(
    labeler: OpenCvLabeler, min_confidence: float
) -> None:
    # GIVEN a valid photo and MinConfidence outside 0..100
    # WHEN labelled / THEN InvalidParameterException
    error = _error(labeler, photo("coffee"), min_confidence=min_confidence)
    assert error.code == "InvalidParameterException"
    assert error.message == f"MinConfidence must be between 0 and 100, got {min_confidence}"


def test_missing_cascade_directory_fails_at_construction(tmp_path: Path) -> None:
    # GIVEN a directory without the cascade files
    # WHEN a labeler is built on it / THEN it refuses at once rather than label nothing
    with pytest.raises(FileNotFoundError):
        OpenCvLabeler(cascade_dir=tmp_path)
