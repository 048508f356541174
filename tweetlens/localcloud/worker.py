"""One warm Lambda execution environment: imports a handler once, then serves invocations.

Run as a script by ``runtime.py`` (never imported by it): ``python -u worker.py CODE_URI
HANDLER LOG_PATH``. Only the standard library is used so that the function sees its own
CodeUri and dependencies, not the local cloud. Protocol: one JSON object per line, requests
on stdin, responses on the original stdout; the handler's stdout and stderr are redirected
to LOG_PATH, which the parent reads after each invocation.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO


class LambdaContext:
    """The context object Lambda's Python runtime passes to handlers."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = request["invoked_function_arn"]
        self.aws_request_id = request["request_id"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _to_json(value: Any) -> str:
    # Lambda's runtime serialises Decimal (what boto3's DynamoDB deserialiser returns).
    def default(obj: Any) -> Any:
        if isinstance(obj, decimal.Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default)


def _error(error_type: str, message: str, exc: BaseException | None = None) -> dict[str, Any]:
    # Like Lambda's runtime, the trace starts at the handler: this module's frames are dropped.
    frames = traceback.extract_tb(exc.__traceback__) if exc else []
    stack = traceback.format_list([frame for frame in frames if frame.filename != __file__])
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack}


def _log_error(error: dict[str, Any], exc: BaseException) -> None:
    # Same shape as Lambda's "[ERROR] Type: message" line followed by the traceback.
    sys.stderr.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\n")
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()


def _load_handler(handler: str) -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        error = _error(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        )
        _log_error(error, exc)
        return None, error
    except ImportError as exc:
        error = _error(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        )
        _log_error(error, exc)
        return None, error
    except Exception as exc:
        error = _error(type(exc).__name__, str(exc), exc)
        _log_error(error, exc)
        return None, error
    function = getattr(module, function_name, None)
    if not callable(function):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message)
    return function, None


def _max_memory_mb() -> int:
    # VmHWM is this process's own peak; ru_maxrss on Linux also counts the parent's
    # memory at fork time, which would report the local cloud's size, not the function's.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return -(-int(line.split()[1]) // 1024)
    except OSError:
        pass
    return -(-resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _invoke(function: Callable[..., Any], request: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    payload: str | None = None
    error: dict[str, Any] | None = None
    try:
        result = function(json.loads(request["event"]), LambdaContext(request))
        try:
            payload = _to_json(result)
        except (TypeError, ValueError) as exc:
            error = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    except Exception as exc:
        error = _error(type(exc).__name__, str(exc), exc)
        _log_error(error, exc)
    duration_ms = (time.perf_counter() - started) * 1000
    sys.stdout.flush()
    sys.stderr.flush()
    return {
        "request_id": request["request_id"],
        "payload": payload,
        "error": error,
        "duration_ms": duration_ms,
        "max_memory_mb": _max_memory_mb(),
    }


def main() -> int:
    code_uri, handler, log_path = sys.argv[1:4]
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    # Lambda puts the task root first on the path; this script's own folder must not be there.
    sys.path[0] = code_uri
    os.chdir(code_uri)
    started = time.perf_counter()
    cpu_started = time.process_time()
    function, init_error = _load_handler(handler)
    sys.stdout.flush()
    sys.stderr.flush()
    init_ms = (time.perf_counter() - started) * 1000
    # CPU time too: on a shared machine it is what the init costs, whatever else runs.
    init_cpu_ms = (time.process_time() - cpu_started) * 1000
    _send(
        channel,
        {"type": "ready", "init_ms": init_ms, "init_cpu_ms": init_cpu_ms, "error": init_error},
    )
    if function is None:
        return 1
    for line in sys.stdin:
        if not line.strip():
            continue
        _send(channel, _invoke(function, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
