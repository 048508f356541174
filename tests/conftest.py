"""Fixtures shared by every test suite."""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Powertools reads these when a function's modules are first imported, and test modules import
# functions in any order: set them before any of them is collected, as Lambda does.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "tweetlens")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tweetlens-tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

# The X-Ray SDK opens a UDP socket when first imported; import it here, before pytest-socket
# disables sockets for the unit tests, so the import cannot fail inside a test.
import aws_xray_sdk.core  # noqa: F401

# Collection imports moto, botocore's models, pydantic schemas: millions of objects that live
# until the end. With the collector paused while they are made and frozen afterwards, no full
# collection walks them again during the tests (see `pytest_collection_finish`).
gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
    gc.enable()


REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = "tweetlens-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tweetlens-test"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_time_in_millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_time_in_millis


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> Any:
    """Load a sample event from events/, the files `sam local invoke -e` uses too."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


# Powertools' ``log_metrics`` warns when a handler ends with no application metric; its
# documented way to quiet that is a warnings filter on this text. Whether the warning comes
# depends on the order tests run in (not on a cold start), so a test cannot assert it.
NO_APPLICATION_METRICS = "No application metrics to publish"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``@pytest.mark.no_application_metrics``: the handler is expected to count nothing.

    A refused event or an early exit legitimately publishes no application metric; such a test
    says so, and only for it is the warning filtered. Every other test still shows it.
    """
    quiet = pytest.mark.filterwarnings(f"ignore:{NO_APPLICATION_METRICS}:UserWarning")
    for item in items:
        if item.get_closest_marker("no_application_metrics") is not None:
            item.add_marker(quiet)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region so no test can ever reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def dead_letters_read_by_short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's SQS, like the local cloud's, is one store: a short poll's empty answer is exact.

    `tweetlens dlq` long-polls a stack in AWS (``RECEIVE_WAIT_SECONDS``), and a stack the tests
    make in-process with moto has no endpoint to tell it apart, so every listing and redrive
    would end on an empty receive that waits a second for nothing (over a minute of the unit
    tests). The long poll itself is pinned by tests/unit/classifier/test_dead_letter_receive.py,
    which keeps it.
    """
    import tweetlens.dlq

    monkeypatch.setattr(tweetlens.dlq, "RECEIVE_WAIT_SECONDS", 0)
