"""A Docker-less Lambda runtime: warm worker processes per function, Lambda's timeouts,
REPORT lines and error shapes, wired into moto so every Invoke reaches it.

Concurrency: each function has a pool of at most N workers, N = its reserved concurrency or
else the larger of ``default_concurrency`` (2, the core count of the machines this runs on)
and the concurrency its SQS event source mappings may ask for (``require_workers``: the sum
of their ``MaximumConcurrency``, which Lambda's pollers are allowed to reach). An invocation
beyond N waits for a free worker instead of being throttled as in AWS, so local callers
(pollers, Step Functions tasks) see back-pressure rather than ``TooManyRequestsException``.
Reserved concurrency 0 throttles every call, as in AWS.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.core.exceptions import JsonRESTError

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.emulator import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY
from tweetlens.localcloud.errors import (
    PAYLOAD_TOO_LARGE,
    SYNC_INVOKE_PAYLOAD_LIMIT,
    UnknownResourceError,
    WorkerError,
    payload_too_large_message,
)
from tweetlens.localcloud.models import (
    FunctionConfig,
    InvocationRecord,
    InvocationResult,
    LambdaError,
)

logger = Logger(service="localcloud")

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
DEFAULT_CONCURRENCY = 2
INIT_TIMEOUT_SECONDS = 10.0
HISTORY_LIMIT = 10_000


def format_report(
    request_id: str,
    *,
    duration_ms: float,
    memory_size: int,
    max_memory_used: int,
    init_duration_ms: float | None = None,
    timed_out: bool = False,
) -> str:
    """Lambda's REPORT line; Init Duration only on a cold start, Status only on a timeout."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {math.ceil(duration_ms)} ms",
        f"Memory Size: {memory_size} MB",
        f"Max Memory Used: {max_memory_used} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if timed_out:
        fields.append("Status: timeout")
    return "\t".join(fields)


@dataclass(frozen=True)
class InitMeasurement:
    """One cold start's init phase: how long the handler's module took to import."""

    init_ms: float
    init_cpu_ms: float
    error: LambdaError | None
    logs: str


class _WorkerTimeout(Exception):
    pass


class _WorkerExited(Exception):
    pass


class _Worker:
    """One execution environment: a child Python process running ``worker.py``."""

    def __init__(
        self,
        function: FunctionConfig,
        env: Mapping[str, str],
        site_packages: Path | None = None,
    ) -> None:
        self.function = function
        log_fd, log_name = tempfile.mkstemp(
            prefix=f"localcloud-{function.logical_id}-", suffix=".log"
        )
        os.close(log_fd)
        self.log_path = Path(log_name)
        self.init_ms = 0.0
        self.init_cpu_ms = 0.0
        self.init_error: LambdaError | None = None
        self._buffer = b""
        # With site_packages, -S leaves this interpreter's own site-packages (the tooling's
        # environment) off the path and PYTHONPATH puts only the given folder there.
        isolation = ["-S"] if site_packages is not None else []
        if site_packages is not None:
            env = {**env, "PYTHONPATH": str(site_packages)}
        self.process = subprocess.Popen(  # noqa: S603 - fixed interpreter and script
            [
                sys.executable,
                *isolation,
                "-u",
                str(WORKER_SCRIPT),
                str(function.code_uri),
                function.handler,
                log_name,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=str(function.code_uri),
        )

    def wait_ready(self, timeout: float) -> None:
        message = self._read_message(time.monotonic() + timeout)
        if message.get("type") != "ready":
            raise WorkerError(f"worker of {self.function.name} sent {message!r} instead of ready")
        self.init_ms = float(message["init_ms"])
        self.init_cpu_ms = float(message.get("init_cpu_ms", 0.0))
        if message.get("error"):
            self.init_error = _lambda_error(message["error"])

    def invoke(self, request: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerExited(str(exc)) from exc
        return self._read_message(time.monotonic() + timeout)

    def take_logs(self) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            # The worker appends, so truncating here starts the next invocation's logs clean.
            os.truncate(self.log_path, 0)
        except FileNotFoundError:
            return ""
        return text

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.log_path.unlink(missing_ok=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerTimeout
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                raise _WorkerTimeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise _WorkerExited(f"exit status {self.process.wait()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


def _lambda_error(raw: Mapping[str, Any]) -> LambdaError:
    return LambdaError(
        error_type=str(raw["errorType"]),
        error_message=str(raw["errorMessage"]),
        stack_trace=list(raw.get("stackTrace") or []),
    )


class _FunctionPool:
    """Idle workers of one function and the cap on how many may exist at once."""

    def __init__(self, function: FunctionConfig, env: Mapping[str, str], cap: int) -> None:
        self.function = function
        self.env = env
        self.cap = cap
        self.idle: deque[_Worker] = deque()
        self.live = 0
        self.condition = threading.Condition()
        self.closed = False

    def acquire(self) -> _Worker | None:
        """An idle worker, or None when the caller may start a new one (a cold start)."""
        with self.condition:
            while not self.idle and self.live >= self.cap and not self.closed:
                self.condition.wait()
            if self.closed:
                raise WorkerError(f"runtime of {self.function.name} is shut down")
            if self.idle:
                return self.idle.pop()
            self.live += 1
            return None

    def release(self, worker: _Worker | None) -> None:
        """Return a healthy worker to the pool, or give up the slot of a dead one."""
        with self.condition:
            if worker is not None and worker.alive() and not self.closed:
                self.idle.append(worker)
            else:
                self.live -= 1
                if worker is not None:
                    worker.kill()
            self.condition.notify()

    def close(self) -> None:
        with self.condition:
            self.closed = True
            while self.idle:
                self.idle.pop().kill()
                self.live -= 1
            self.condition.notify_all()


class LambdaRuntime:
    """Runs the deployed functions' handlers in warm local worker processes."""

    def __init__(
        self,
        functions: Mapping[str, FunctionConfig],
        *,
        endpoint_url: str,
        region: str,
        extra_env: Mapping[str, str] | None = None,
        default_concurrency: int = DEFAULT_CONCURRENCY,
        on_invoke: Callable[[], None] = lambda: None,
        while_waiting: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._on_invoke = on_invoke
        # Held while an invocation waits for a free worker (taskclock.py: a Step Functions
        # task's timeout does not run meanwhile, since Lambda would have scaled out).
        self._while_waiting = while_waiting
        self._by_name = {function.name: function for function in functions.values()}
        self._by_logical_id = dict(functions)
        self._endpoint_url = endpoint_url
        self._region = region
        self._extra_env = dict(extra_env or {})
        self._default_concurrency = default_concurrency
        self._pools: dict[str, _FunctionPool] = {}
        self._required_workers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._history: deque[InvocationRecord] = deque(maxlen=HISTORY_LIMIT)

    def function(self, name_or_logical_id: str) -> FunctionConfig:
        """A function by physical name, logical id or ARN."""
        key = name_or_logical_id.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        function = self._by_name.get(key) or self._by_logical_id.get(key)
        if function is None:
            raise UnknownResourceError(f"no deployed function {name_or_logical_id!r}")
        return function

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def require_workers(self, function_name: str, workers: int) -> None:
        """Let ``function_name`` run at least ``workers`` invocations at once (unless its
        reserved concurrency says otherwise). Takes effect before its first invocation."""
        function = self.function(function_name)
        with self._lock:
            self._required_workers[function.name] = workers

    def warm(self, function_name: str, workers: int) -> int:
        """Start up to ``workers`` workers of a function ahead of its invocations (at most its
        cap), like provisioned concurrency: the invocations they serve are not cold starts.
        Returns how many workers are idle and ready afterwards."""
        function = self.function(function_name)
        pool = self._pool(function)
        with pool.condition:
            missing = max(0, min(workers, pool.cap) - pool.live)
            pool.live += missing
        starting = [_Worker(function, pool.env) for _ in range(missing)]
        init_timeout = max(INIT_TIMEOUT_SECONDS, float(function.timeout))
        for worker in starting:
            try:
                worker.wait_ready(init_timeout)
            except (_WorkerTimeout, _WorkerExited, WorkerError):
                worker.kill()
            if worker.init_error is not None or not worker.alive():
                # A failing init is left to the first invocation, which reports it as Lambda does.
                worker.kill()
                pool.release(None)
                continue
            pool.release(worker)
        with pool.condition:
            return len(pool.idle)

    def worker_cap(self, function_name: str) -> int:
        """How many invocations of the function may run at once."""
        function = self.function(function_name)
        if function.reserved_concurrency is not None:
            return function.reserved_concurrency
        with self._lock:
            return max(self._default_concurrency, self._required_workers.get(function.name, 0))

    def history(self) -> list[InvocationRecord]:
        with self._lock:
            return list(self._history)

    def environment(self, function: FunctionConfig) -> dict[str, str]:
        """The process environment of a function's workers, as Lambda would set it."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(function.code_uri),
            "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": "localcloud",
            "AWS_ENDPOINT_URL": self._endpoint_url,
            # StartSyncExecution's host prefix ("sync-") would turn the emulator's loopback
            # address into a host name that does not exist.
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            # No X-Ray daemon runs locally; Powertools' Tracer would try to reach one.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update(function.environment)
        env.update(self._extra_env)
        return env

    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        """Run one invocation to completion (or timeout) and return its result."""
        function = self.function(function_name)
        self._on_invoke()
        request_id = str(uuid.uuid4())
        started_at = time.time()
        if function.reserved_concurrency == 0:
            return self._finish_throttled(function, request_id, started_at)
        pool = self._pool(function)
        with self._lock:
            self._in_flight += 1
        try:
            with self._while_waiting():
                worker = pool.acquire()
            result = self._run(
                function, pool, worker, request_id=request_id, event=event, started_at=started_at
            )
        finally:
            with self._lock:
                self._in_flight -= 1
        self._record(result)
        return result

    def measure_init(
        self, function: FunctionConfig, *, site_packages: Path | None = None
    ) -> InitMeasurement:
        """Start one fresh execution environment of ``function``, time its init, tear it down.

        The worker is never pooled and runs no invocation: this is the Init Duration a cold
        start would report, for ``function`` as deployed or for any configuration beside it
        (another handler in another directory, with the same environment).

        ``site_packages``: the packages the Lambda runtime itself provides (boto3 and its
        dependencies). The worker then sees the standard library, the function's code and
        that folder, and none of the tooling's own packages, as in Lambda; without it the
        worker shares this interpreter's environment, as every invocation's worker does.
        """
        env = self.environment(function)
        worker = _Worker(function, env, site_packages)
        try:
            timeout = max(INIT_TIMEOUT_SECONDS, float(function.timeout))
            try:
                worker.wait_ready(timeout)
            except (_WorkerTimeout, _WorkerExited) as exc:
                raise WorkerError(f"worker of {function.name} did not start: {exc!r}") from exc
            return InitMeasurement(
                init_ms=worker.init_ms,
                init_cpu_ms=worker.init_cpu_ms,
                error=worker.init_error,
                logs=worker.take_logs(),
            )
        finally:
            worker.kill()

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    def _pool(self, function: FunctionConfig) -> _FunctionPool:
        with self._lock:
            pool = self._pools.get(function.name)
            if pool is None:
                if function.reserved_concurrency is not None:
                    cap = function.reserved_concurrency
                else:
                    required = self._required_workers.get(function.name, 0)
                    cap = max(self._default_concurrency, required)
                pool = _FunctionPool(function, self.environment(function), cap)
                self._pools[function.name] = pool
            return pool

    def _run(
        self,
        function: FunctionConfig,
        pool: _FunctionPool,
        worker: _Worker | None,
        *,
        request_id: str,
        event: Any,
        started_at: float,
    ) -> InvocationResult:
        cold = worker is None
        init_ms: float | None = None
        try:
            if worker is None:
                worker = _Worker(function, pool.env)
                init_timeout = max(INIT_TIMEOUT_SECONDS, float(function.timeout))
                try:
                    worker.wait_ready(init_timeout)
                except (_WorkerTimeout, _WorkerExited) as exc:
                    worker.init_error = LambdaError(
                        error_type="Runtime.ExitError",
                        error_message=(
                            f"RequestId: {request_id} Error: Runtime failed to start: "
                            + (
                                f"init timed out after {init_timeout:.2f} seconds"
                                if isinstance(exc, _WorkerTimeout)
                                else str(exc)
                            )
                        ),
                    )
                    worker.init_ms = init_timeout * 1000 if isinstance(exc, _WorkerTimeout) else 0.0
                init_ms = worker.init_ms
                if worker.init_error is not None:
                    return self._result(
                        function,
                        request_id,
                        started_at,
                        cold=True,
                        init_ms=init_ms,
                        duration_ms=0.0,
                        memory_mb=0,
                        error=worker.init_error,
                        payload=None,
                        logs=worker.take_logs(),
                    )
            deadline_ms = int(time.time() * 1000) + function.timeout * 1000
            request = {
                "request_id": request_id,
                "event": json.dumps(event),
                "deadline_ms": deadline_ms,
                "invoked_function_arn": function.arn,
            }
            try:
                response = worker.invoke(request, float(function.timeout))
            except _WorkerTimeout:
                return self._timed_out(
                    function, worker, request_id, started_at, cold=cold, init_ms=init_ms
                )
            except _WorkerExited as exc:
                logs = worker.take_logs()
                error = LambdaError(
                    error_type="Runtime.ExitError",
                    error_message=(
                        f"RequestId: {request_id} Error: Runtime exited with error: {exc}"
                    ),
                )
                return self._result(
                    function,
                    request_id,
                    started_at,
                    cold=cold,
                    init_ms=init_ms,
                    duration_ms=(time.time() - started_at) * 1000,
                    memory_mb=0,
                    error=error,
                    payload=None,
                    logs=logs,
                )
            handler_error = _lambda_error(response["error"]) if response.get("error") else None
            return self._result(
                function,
                request_id,
                started_at,
                cold=cold,
                init_ms=init_ms,
                duration_ms=float(response["duration_ms"]),
                memory_mb=int(response["max_memory_mb"]),
                error=handler_error,
                payload=response.get("payload"),
                logs=worker.take_logs(),
            )
        finally:
            if worker is not None and (not worker.alive() or worker.init_error is not None):
                worker.kill()
            pool.release(worker)

    def _timed_out(
        self,
        function: FunctionConfig,
        worker: _Worker,
        request_id: str,
        started_at: float,
        *,
        cold: bool,
        init_ms: float | None,
    ) -> InvocationResult:
        logs = worker.take_logs()
        # The execution environment is torn down, as Lambda does after a timeout.
        worker.kill()
        message = f"Task timed out after {function.timeout:.2f} seconds"
        logs += f"{time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())} {request_id} {message}\n"
        return self._result(
            function,
            request_id,
            started_at,
            cold=cold,
            init_ms=init_ms,
            duration_ms=function.timeout * 1000.0,
            memory_mb=0,
            error=LambdaError(
                error_type="Sandbox.Timedout",
                error_message=f"RequestId: {request_id} Error: {message}",
            ),
            payload=None,
            logs=logs,
            timed_out=True,
        )

    def _finish_throttled(
        self, function: FunctionConfig, request_id: str, started_at: float
    ) -> InvocationResult:
        error = LambdaError(error_type="TooManyRequestsException", error_message="Rate Exceeded.")
        result = self._result(
            function,
            request_id,
            started_at,
            cold=False,
            init_ms=None,
            duration_ms=0.0,
            memory_mb=0,
            error=error,
            payload=None,
            logs="",
        )
        self._record(result)
        return result

    def _result(
        self,
        function: FunctionConfig,
        request_id: str,
        started_at: float,
        *,
        cold: bool,
        init_ms: float | None,
        duration_ms: float,
        memory_mb: int,
        error: LambdaError | None,
        payload: str | None,
        logs: str,
        timed_out: bool = False,
    ) -> InvocationResult:
        report = format_report(
            request_id,
            duration_ms=duration_ms,
            memory_size=function.memory_size,
            max_memory_used=memory_mb,
            init_duration_ms=init_ms if cold else None,
            timed_out=timed_out,
        )
        framed = (
            f"START RequestId: {request_id} Version: $LATEST\n{logs}"
            f"END RequestId: {request_id}\n{report}\n"
        )
        return InvocationResult(
            function_name=function.name,
            request_id=request_id,
            payload_json=payload if error is None else None,
            error=error,
            report=report,
            logs=framed,
            duration_ms=duration_ms,
            cold_start=cold,
            init_duration_ms=init_ms if cold else None,
            timed_out=timed_out,
            started_at=started_at,
            ended_at=time.time(),
        )

    def _record(self, result: InvocationResult) -> None:
        record = InvocationRecord(
            function_name=result.function_name,
            request_id=result.request_id,
            report=result.report,
            error_type=result.error.error_type if result.error else None,
            error_message=result.error.error_message if result.error else None,
            logs=result.logs,
            cold_start=result.cold_start,
            started_at=result.started_at,
            ended_at=result.ended_at,
        )
        with self._lock:
            self._history.append(record)
        logger.debug("Invocation finished", report=result.report)


def install_lambda_hook(patches: PatchSet, runtime: LambdaRuntime) -> None:
    """Send every Invoke the emulator receives (API, Step Functions tasks) to ``runtime``.

    moto's ``LambdaFunction.invoke`` turns ``errored`` into the ``X-Amz-Function-Error``
    header; the Step Functions interpreter then reads ``errorType`` from the payload as the
    error name, which is how ``Catch: ["MyError"]`` matches a handler's exception class.
    """

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            result = runtime.invoke(self.function_name, {} if event is None else event)
        except UnknownResourceError as exc:
            error = LambdaError(error_type="Runtime.Unavailable", error_message=str(exc))
            return json.dumps(error.to_payload()), True, ""
        return result.wire_payload(), result.error is not None, result.logs

    patches.replace(LambdaFunction, "_invoke_lambda", invoke_lambda)
    _install_payload_limit(patches)


class _PayloadTooLarge(JsonRESTError):
    code = 413

    def __init__(self, size: int) -> None:
        super().__init__(PAYLOAD_TOO_LARGE, payload_too_large_message(size))


def _install_payload_limit(patches: PatchSet) -> None:
    """Refuse a synchronous Invoke over Lambda's payload quota, as Lambda does, before the
    function runs (moto ran any size). ``Event`` and ``DryRun`` invocations are left as they are."""
    original_invoke = LambdaResponse.invoke

    def invoke(response: Any) -> Any:
        invocation_type = response.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        raw = response.raw_body
        size = len(raw.encode("utf-8") if isinstance(raw, str) else raw or b"")
        if invocation_type == "RequestResponse" and size > SYNC_INVOKE_PAYLOAD_LIMIT:
            raise _PayloadTooLarge(size)
        return original_invoke(response)

    patches.replace(LambdaResponse, "invoke", invoke)
