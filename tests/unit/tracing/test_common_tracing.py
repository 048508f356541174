"""``common.tracing``: the X-Ray SDK is loaded only where tracing is on; behaviour unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer

from common.tracing import DisabledProvider, make_tracer, tracing_disabled

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
FUNCTION_PACKAGES = ("classifier", "execution_closer", "fetch_image", "producer", "store_result")


@pytest.fixture
def fresh_tracer_config() -> Iterator[None]:
    """Powertools shares one Tracer configuration per process: start and end with the default."""
    Tracer._reset_config()
    yield
    Tracer._reset_config()


@pytest.mark.parametrize(
    ("environment", "disabled"),
    [
        pytest.param({"LAMBDA_TASK_ROOT": "/var/task"}, False, id="in Lambda"),
        pytest.param(
            {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
            True,
            id="switched off",
        ),
        pytest.param({}, True, id="outside Lambda"),
        pytest.param(
            {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, True, id="sam local"
        ),
        pytest.param(
            {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"}, True, id="chalice"
        ),
    ],
)
def test_tracing_is_off_where_powertools_turns_it_off(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], disabled: bool
) -> None:
    # GIVEN an environment
    for name in (
        "LAMBDA_TASK_ROOT",
        "POWERTOOLS_TRACE_DISABLED",
        "AWS_SAM_LOCAL",
        "AWS_CHALICE_CLI_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    # WHEN asked whether tracing is off
    # THEN the answer is Powertools' own (its Tracer agrees)
    assert tracing_disabled() is disabled
    assert bool(Tracer._is_tracer_disabled()) is disabled


def test_disabled_tracer_gets_the_provider_that_records_nothing(
    monkeypatch: pytest.MonkeyPatch, fresh_tracer_config: None
) -> None:
    # GIVEN tracing switched off
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    # WHEN the function's tracer is made
    tracer = make_tracer()

    # THEN it is disabled and its provider is the one that records nothing
    assert tracer.disabled is True
    assert isinstance(tracer.provider, DisabledProvider)


def test_enabled_tracer_is_powertools_x_ray_tracer(
    monkeypatch: pytest.MonkeyPatch, fresh_tracer_config: None
) -> None:
    # GIVEN a Lambda environment with tracing on
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")

    # WHEN the function's tracer is made
    tracer = make_tracer()

    # THEN it is enabled, on the X-Ray SDK's recorder, as Tracer() alone would make it
    assert tracer.disabled is False
    assert tracer.provider.__module__.startswith("aws_xray_sdk")


def test_decorated_code_runs_and_raises_unchanged_when_disabled(
    monkeypatch: pytest.MonkeyPatch, fresh_tracer_config: None
) -> None:
    # GIVEN a disabled tracer and a handler and a method it decorates
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = make_tracer()

    @tracer.capture_method
    def double(value: int) -> int:
        if value < 0:
            raise ValueError("negative")
        return value * 2

    @tracer.capture_lambda_handler
    def handler(event: dict[str, int], context: object) -> int:
        tracer.put_annotation("key", "value")
        tracer.put_metadata("key", {"a": 1})
        return double(event["value"])

    # WHEN they run, then fail
    # THEN the result and the exception are the code's own
    assert handler({"value": 21}, object()) == 42
    with pytest.raises(ValueError, match="negative"):
        handler({"value": -1}, object())


@pytest.mark.parametrize("package", FUNCTION_PACKAGES)
def test_a_function_with_tracing_off_never_imports_the_x_ray_recorder(package: str) -> None:
    # GIVEN a fresh interpreter with a function's environment, tracing off
    environment = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": package,
        "POWERTOOLS_METRICS_NAMESPACE": "tweetlens",
    }

    # WHEN its observability module is imported
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {package}.observability; print('aws_xray_sdk.core' in sys.modules)",
        ],
        cwd=FUNCTIONS,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    # THEN the X-Ray SDK's recorder (two botocore clients) was never loaded
    assert imported.stdout.strip() == "False"
