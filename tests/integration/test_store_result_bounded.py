"""StoreResultFunction gives up on a throttled or silent DynamoDB within its task's timeout.

The handler runs as Lambda runs it, its own DynamoDB client pointed (``AWS_ENDPOINT_URL_DYNAMODB``)
at a small DynamoDB endpoint on loopback that always throttles, or never answers. Timeouts
need a real socket, which the unit tests forbid and moto's in-process mock never exercises;
no local cloud is started. The error the handler raises is ``ResultStoreBusy``, the one the
Store Result state retries; ending by the task's TimeoutSeconds would end the execution.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from store_result.errors import ResultStoreBusy
from store_result.settings import DYNAMODB_ATTEMPTS, DYNAMODB_BOUNDS
from tests.conftest import FakeLambdaContext, load_event

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "classify_image.asl.json"
THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
).encode()
QUERY = "DynamoDB_20120810.Query"


class FakeDynamoDb(ThreadingHTTPServer):
    """Answers every request with a throttle, or (``silent``) holds it without an answer."""

    daemon_threads = True

    def __init__(self, *, silent: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.silent = silent
        self.targets: list[str] = []
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeDynamoDb

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.targets.append(self.headers["X-Amz-Target"])
        if self.server.silent:
            # Longer than any read timeout of the client; released when the test ends.
            self.server.released.wait(30)
            return
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(THROTTLED)))
        self.end_headers()
        self.wfile.write(THROTTLED)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(silent: bool) -> Iterator[FakeDynamoDb]:
    server = FakeDynamoDb(silent=silent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def throttling() -> Iterator[FakeDynamoDb]:
    yield from serve(silent=False)


@pytest.fixture
def silent() -> Iterator[FakeDynamoDb]:
    yield from serve(silent=True)


@pytest.fixture
def task_timeout() -> int:
    """The Store Result state's TimeoutSeconds, from the state machine itself."""
    timeout: int = json.loads(ASL.read_text(encoding="utf-8"))["States"]["Store Result"][
        "TimeoutSeconds"
    ]
    return timeout


def cold_start(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> ModuleType:
    """store_result.app as Lambda starts it, its DynamoDB endpoint set by the environment."""
    for name, value in {
        "RESULTS_TABLE": "tweetlens-dev-ResultsTable-1QX7Z3K9ABCD",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    app = importlib.import_module("store_result.app")
    # The client is made on first use and kept: this test makes its own (fresh_client drops it).
    app.dynamodb_client.cache_clear()
    return app


@pytest.fixture
def fresh_client() -> Iterator[None]:
    """Leaves no client pointed at this test's endpoint for a later test."""
    yield
    importlib.import_module("store_result.app").dynamodb_client.cache_clear()


@pytest.mark.no_application_metrics
@pytest.mark.usefixtures("aws_credentials", "fresh_client")
def test_a_throttled_table_ends_the_store_in_result_store_busy_within_the_task(
    monkeypatch: pytest.MonkeyPatch, throttling: FakeDynamoDb, task_timeout: int
) -> None:
    # GIVEN a DynamoDB that throttles every request, and the sample Store Result input
    app = cold_start(monkeypatch, throttling.url)
    event = load_event("store_result_cat_photo.json")

    # WHEN the handler runs
    started = time.monotonic()
    with pytest.raises(ResultStoreBusy) as raised:
        app.lambda_handler(event, FakeLambdaContext(remaining_time_in_millis=task_timeout * 1000))
    elapsed = time.monotonic() - started

    # THEN it gave up after exactly its client's attempts at the first call (the Query of stale
    # labels), with the error the state machine retries
    assert str(raised.value) == (
        "Query of stale labels throttled: ProvisionedThroughputExceededException"
    )
    assert throttling.targets == [QUERY] * DYNAMODB_ATTEMPTS == [QUERY, QUERY]
    # AND within that call's worst case (one backoff of at most 1 s), far inside the task
    assert elapsed < DYNAMODB_BOUNDS.worst_case_seconds() == 4.0
    assert task_timeout == 10


@pytest.mark.no_application_metrics
@pytest.mark.usefixtures("aws_credentials", "fresh_client")
def test_a_table_that_never_answers_ends_the_store_in_result_store_busy_within_the_task(
    monkeypatch: pytest.MonkeyPatch, silent: FakeDynamoDb, task_timeout: int
) -> None:
    # GIVEN a DynamoDB that accepts every request and never answers
    app = cold_start(monkeypatch, silent.url)
    event = load_event("store_result_cat_photo.json")

    # WHEN the handler runs
    started = time.monotonic()
    with pytest.raises(ResultStoreBusy) as raised:
        app.lambda_handler(event, FakeLambdaContext(remaining_time_in_millis=task_timeout * 1000))
    elapsed = time.monotonic() - started

    # THEN each attempt waited out its read timeout, and the store gave up with the error the
    # state machine retries, not by the task's timeout
    assert str(raised.value) == "DynamoDB did not answer: ReadTimeoutError"
    assert silent.targets == [QUERY] * DYNAMODB_ATTEMPTS == [QUERY, QUERY]
    read_timeouts = DYNAMODB_ATTEMPTS * DYNAMODB_BOUNDS.read_timeout
    assert read_timeouts <= elapsed < DYNAMODB_BOUNDS.worst_case_seconds() < task_timeout
