"""The X bearer token: read from Secrets Manager or SSM, cached, sent to X, never logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from producer.credentials import BearerTokenError
from producer.observability import logger
from producer.replay import ReplayAdapter
from tests.unit.producer.producer_testkit import (
    REGION,
    ROUTES,
    TABLE,
    Aws,
    FakeLambdaContext,
    load_event,
)
from tweetlens_xapi.recording import ReplayRecording

TOKEN = "AAAAAAAAAAAAAAAAAAAAAFh7xQEAAAAAq3ZpTXcyWk9rS2xBcDRvV2ZUQ1ZqUXJi%3DnG5bTqRzLw8XkY2vPc"
TOKEN_NAME = "tweetlens/x-bearer-token"


@pytest.fixture
def x_api_env(aws: Aws) -> Callable[[str], dict[str, str]]:
    def build(store: str) -> dict[str, str]:
        return {
            "HASHTAG_ROUTES": ROUTES,
            "ROUTE_QUEUE_URLS": json.dumps(aws.queue_urls),
            "CHECKPOINTS_TABLE": TABLE,
            "PRODUCER_DLQ_URL": aws.dead_letter_queue_url,
            "POST_SOURCE": "x-api",
            "REPLAY_URI": "",
            "BEARER_TOKEN_STORE": store,
            "BEARER_TOKEN_NAME": TOKEN_NAME,
            "MAX_RESULTS_PER_PAGE": "10",
        }

    return build


@pytest.fixture
def x_api(aws: Aws) -> Iterator[list[tuple[str, Any]]]:
    """X itself, played by the sample recording behind requests' HTTP adapter.

    Patched inside the moto mock (which patches the same method) and undone before it ends.
    """
    replay = ReplayAdapter(ReplayRecording.model_validate(load_event("x_api_search_photos.json")))
    calls: list[tuple[str, Any]] = []

    def send(self: HTTPAdapter, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        calls.append((str(request.headers["Authorization"]), kwargs.get("timeout")))
        return replay.send(request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HTTPAdapter, "send", send)
        yield calls


class LogTap:
    """All log output at DEBUG: Powertools' stream and every standard-library logger."""

    def __init__(self, caplog: pytest.LogCaptureFixture, stream: io.StringIO) -> None:
        self._caplog = caplog
        self._stream = stream

    def restart(self) -> None:
        """Forget the set-up's own AWS calls, which carry the token on purpose."""
        self._caplog.clear()
        self._stream.seek(0)
        self._stream.truncate()

    def text(self) -> str:
        return self._stream.getvalue() + self._caplog.text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, log_output: io.StringIO) -> Iterator[LogTap]:
    caplog.set_level(logging.DEBUG)
    previous = logger.log_level
    logger.setLevel(logging.DEBUG)
    yield LogTap(caplog, log_output)
    logger.setLevel(previous)


def test_token_from_secrets_manager_is_sent_and_never_logged(
    aws: Aws,
    x_api_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    x_api: list[tuple[str, Any]],
    logs: LogTap,
) -> None:
    # GIVEN the token in Secrets Manager and logging at DEBUG everywhere
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=TOKEN_NAME, SecretString=TOKEN
    )
    app = load_app(x_api_env("secretsmanager"))
    logs.restart()

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN both pages were requested with the token, with a timeout, and the run completed
    assert x_api == [(f"Bearer {TOKEN}", (3.05, 10.0))] * 2
    assert result["published"] == {"cats": 8, "dogs": 3}
    # AND the token appears in no log line, DEBUG included, nor in the result
    assert "Producer run finished" in logs.text()
    assert "GetSecretValue" in logs.text()
    assert TOKEN not in logs.text()
    assert TOKEN not in json.dumps(result)


def test_token_from_ssm_securestring(
    aws: Aws,
    x_api_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    x_api: list[tuple[str, Any]],
    logs: LogTap,
) -> None:
    # GIVEN the token in an SSM SecureString
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=TOKEN_NAME, Value=TOKEN, Type="SecureString"
    )
    app = load_app(x_api_env("ssm"))
    logs.restart()

    # WHEN the schedule fires
    app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it was decrypted and sent, and never logged
    assert [authorization for authorization, _ in x_api] == [f"Bearer {TOKEN}"] * 2
    assert "GetParameter" in logs.text()
    assert TOKEN not in logs.text()


def test_token_is_cached_across_invocations(
    aws: Aws,
    x_api_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    x_api: list[tuple[str, Any]],
) -> None:
    # GIVEN a warm function that has read the token once
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=TOKEN_NAME, SecretString=TOKEN)
    app = load_app(x_api_env("secretsmanager"))
    app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # WHEN the secret becomes unreadable and the next invocation runs
    secrets.delete_secret(SecretId=TOKEN_NAME, ForceDeleteWithoutRecovery=True)
    app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it used the cached token (two pages, then one since the checkpoint)
    assert [authorization for authorization, _ in x_api] == [f"Bearer {TOKEN}"] * 3


@pytest.mark.no_application_metrics
def test_missing_secret_is_a_named_error_without_any_request(
    aws: Aws,
    x_api_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    x_api: list[tuple[str, Any]],
) -> None:
    # GIVEN no secret
    app = load_app(x_api_env("secretsmanager"))

    # WHEN the schedule fires
    with pytest.raises(BearerTokenError) as raised:
        app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the error says which secret, and X was never called
    assert str(raised.value).startswith(
        "cannot read the X bearer token tweetlens/x-bearer-token from secretsmanager: "
    )
    assert x_api == []
    assert aws.checkpoint() is None


@pytest.mark.parametrize(("store", "other"), [("secretsmanager", "ssm"), ("ssm", "secretsmanager")])
def test_only_the_configured_token_store_gets_a_client(
    aws: Aws,
    x_api_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    store: str,
    other: str,
) -> None:
    # GIVEN the producer configured to read its token from one store
    app = load_app(x_api_env(store))

    # WHEN its reader is asked for the other store's token
    with pytest.raises(BearerTokenError) as raised:
        app.sources._token_reader.read(other, "tweetlens/x-bearer-token")

    # THEN there is no client for it: none was made at cold start, and no request was sent
    assert str(raised.value) == (
        f"cannot read the X bearer token tweetlens/x-bearer-token: no {other} client"
    )
