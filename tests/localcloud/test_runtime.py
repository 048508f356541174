"""The Lambda runtime: warm workers, Lambda's errors, timeouts, REPORT lines, concurrency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.localcloud.conftest import SAMPLE_APP, load_event, sample_function
from tweetlens.localcloud.errors import UnknownResourceError
from tweetlens.localcloud.runtime import LambdaRuntime, format_report

ENDPOINT = "http://127.0.0.1:1"


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    functions = {
        "SleeperFunction": sample_function(
            "sleeper.app.lambda_handler", timeout=1, reserved_concurrency=2
        ),
        "ValidatorFunction": sample_function("validator.app.lambda_handler"),
        "InspectorFunction": sample_function(
            "inspector.app.lambda_handler", memory_size=512, environment={"STAGE": "dev"}
        ),
        "BrokenFunction": sample_function("missing_module.app.lambda_handler"),
    }
    lambda_runtime = LambdaRuntime(
        functions, endpoint_url=ENDPOINT, region="eu-west-1", extra_env={"EXTRA_SETTING": "on"}
    )
    yield lambda_runtime
    lambda_runtime.close()


def test_report_line_of_a_cold_start_has_init_duration() -> None:
    # GIVEN a cold invocation's measurements
    # WHEN the REPORT line is formatted
    report = format_report(
        "req-1", duration_ms=12.341, memory_size=256, max_memory_used=80, init_duration_ms=450.12
    )
    # THEN it reads like Lambda's, tab separated, with the billed duration rounded up
    assert report == (
        "REPORT RequestId: req-1\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 80 MB\tInit Duration: 450.12 ms"
    )


def test_report_line_of_a_timeout_has_status_and_no_init() -> None:
    # GIVEN a warm invocation that timed out
    # WHEN the REPORT line is formatted
    report = format_report(
        "req-2", duration_ms=3000.0, memory_size=128, max_memory_used=40, timed_out=True
    )
    # THEN it carries Lambda's timeout status
    assert report == (
        "REPORT RequestId: req-2\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout"
    )


def test_first_call_is_cold_and_second_is_warm(runtime: LambdaRuntime) -> None:
    # GIVEN a function never invoked
    # WHEN it is invoked twice
    first = runtime.invoke("SleeperFunction", load_event("sleeper_short"))
    second = runtime.invoke("SleeperFunction", load_event("sleeper_short"))
    # THEN only the first is a cold start with an init duration in its REPORT line
    assert (first.cold_start, second.cold_start) == (True, False)
    assert first.init_duration_ms is not None
    assert "Init Duration: " in first.report
    assert "Init Duration" not in second.report
    assert first.payload["slept"] == 0.05
    assert first.payload["memory_limit_in_mb"] == "128"


def test_handler_sees_lambda_environment_and_context(runtime: LambdaRuntime) -> None:
    # GIVEN a function with its own env, and the runtime's extra env
    # WHEN the handler is invoked
    result = runtime.invoke("InspectorFunction", load_event("inspector_note"))
    # THEN it sees its env, the emulator endpoint, fake region, its code first on the path
    function = runtime.function("InspectorFunction")
    assert result.error is None
    assert result.payload["env"] == {
        "STAGE": "dev",
        "ITEMS_TABLE": None,
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_NAME": "test-inspector",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LAMBDA_TASK_ROOT": str(SAMPLE_APP / "functions"),
        "EXTRA_SETTING": "on",
    }
    assert result.payload["sys_path_0"] == str(SAMPLE_APP / "functions")
    assert result.payload["function_name"] == "test-inspector"
    assert result.payload["memory_limit_in_mb"] == 512
    assert result.payload["aws_request_id"] == result.request_id
    assert result.payload["invoked_function_arn"] == function.arn
    assert 4000 < result.payload["remaining_ms"] <= 5000


def test_handler_output_is_captured_per_invocation(runtime: LambdaRuntime) -> None:
    # GIVEN a handler that prints to stdout and stderr
    # WHEN it is invoked twice
    first = runtime.invoke("InspectorFunction", {"note": "one"})
    second = runtime.invoke("InspectorFunction", {"note": "two"})
    # THEN each invocation's logs hold only its own output, framed like Lambda's
    assert first.logs == (
        f"START RequestId: {first.request_id} Version: $LATEST\n"
        "inspecting one\nto stderr\n"
        f"END RequestId: {first.request_id}\n{first.report}\n"
    )
    assert "inspecting two\nto stderr\n" in second.logs
    assert "inspecting one" not in second.logs
    assert [record.request_id for record in runtime.history()] == [
        first.request_id,
        second.request_id,
    ]


def test_handler_exception_is_reported_with_its_class_name(runtime: LambdaRuntime) -> None:
    # GIVEN a handler that raises a named exception
    # WHEN it is invoked with a negative value
    result = runtime.invoke("ValidatorFunction", load_event("validator_negative"))
    # THEN the error has Lambda's shape and the exception's class name as errorType
    assert result.error is not None
    assert result.error.error_type == "NegativeValue"
    assert result.error.error_message == "value -4 is negative"
    assert (
        result.error.stack_trace[-1]
        .strip()
        .endswith('raise NegativeValue(f"value {value} is negative")')
    )
    assert result.payload is None
    assert "[ERROR] NegativeValue: value -4 is negative" in result.logs
    assert runtime.history()[-1].error_type == "NegativeValue"


def test_overrunning_function_is_killed_and_replaced(runtime: LambdaRuntime) -> None:
    # GIVEN a warm function with a 1 s timeout
    runtime.invoke("SleeperFunction", load_event("sleeper_short"))
    # WHEN an invocation sleeps past the timeout
    started = time.monotonic()
    result = runtime.invoke("SleeperFunction", load_event("sleeper_overrun"))
    elapsed = time.monotonic() - started
    # THEN it is cut at the timeout with Lambda's error, and the next call starts cold
    assert elapsed < 2.5
    assert result.timed_out is True
    assert result.error is not None
    assert result.error.error_type == "Sandbox.Timedout"
    assert result.error.error_message == (
        f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert result.report.endswith("\tStatus: timeout")
    assert "sleeping 3" in result.logs
    assert f"{result.request_id} Task timed out after 1.00 seconds" in result.logs
    assert runtime.invoke("SleeperFunction", load_event("sleeper_short")).cold_start is True


def test_concurrency_is_capped_by_reserved_concurrency(runtime: LambdaRuntime) -> None:
    # GIVEN a function with reserved concurrency 2
    # WHEN four invocations of 0.6 s arrive at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: runtime.invoke("SleeperFunction", load_event("sleeper_busy")), range(4)
            )
        )
    elapsed = time.monotonic() - started
    # THEN two workers serve them in two waves: two cold starts, at least two sleeps long
    assert [result.error for result in results] == [None, None, None, None]
    assert sum(result.cold_start for result in results) == 2
    assert elapsed >= 1.2


def test_import_failure_is_reported_and_retried_cold(runtime: LambdaRuntime) -> None:
    # GIVEN a function whose handler module does not exist
    # WHEN it is invoked twice
    first = runtime.invoke("BrokenFunction", {})
    second = runtime.invoke("BrokenFunction", {})
    # THEN both fail with Lambda's import error, each on a fresh (cold) environment
    assert first.error is not None
    assert first.error.error_type == "Runtime.ImportModuleError"
    assert first.error.error_message == (
        "Unable to import module 'missing_module.app': No module named 'missing_module'"
    )
    assert (first.cold_start, second.cold_start) == (True, True)


def test_unknown_function_is_refused(runtime: LambdaRuntime) -> None:
    # GIVEN a runtime without such function
    # WHEN it is asked to invoke it
    # THEN it raises a named error
    with pytest.raises(UnknownResourceError, match="no deployed function 'Nope'"):
        runtime.invoke("Nope", {})
