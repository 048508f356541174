"""Fixtures for the local application pieces: labeler, image server, demo stream, traces."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tweetlens.imageserver import IMAGES_DIR, ImageServer
from tweetlens.localcloud.labelers import OpenCvLabeler

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_data(name: str) -> Any:
    """A fixture file from tests/local/data/."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def load_history(name: str) -> list[dict[str, Any]]:
    """An execution history as boto3 returns it: ``timestamp`` as an aware datetime."""
    events: list[dict[str, Any]] = load_data(name)
    return [
        {**event, "timestamp": datetime.datetime.fromisoformat(event["timestamp"])}
        for event in events
    ]


def photo(name: str) -> bytes:
    return (IMAGES_DIR / f"{name}.jpg").read_bytes()


@pytest.fixture(scope="session")
def labeler() -> OpenCvLabeler:
    return OpenCvLabeler()


@pytest.fixture(scope="module")
def image_server() -> Iterator[ImageServer]:
    # A short trickle pause keeps the slow-route test quick; stop() wakes it anyway.
    with ImageServer(slow_pause_seconds=2.0) as server:
        yield server
