"""Step Functions fixes for moto's ASL interpreter: backend wiring, error names, time scale,
and how executions end.

End states, as AWS has them (moto's differ, see ``install_end_states``):

* ``TimeoutSeconds`` elapsed: ``TIMED_OUT``, error ``States.Timeout``, a ``stopDate``; the
  interpreter enters no further state (a task already running finishes, unobserved).
* ``StopExecution``: ``ABORTED`` at once with the call's error and cause and a ``stopDate``
  in the response; the interpreter enters no further state and retries no task.
* A failure: ``FAILED`` with the error and cause; a later stop or timeout cannot overwrite it.

Every status change (``RUNNING``, then the end) is reported to a listener, in that order.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
import types
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import moto.stepfunctions.models as sfn_models
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramRunning
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.stepfunctions.responses import StepFunctionResponse

from tweetlens.localcloud._patching import PatchSet

# aws-sdk integration error prefixes as Step Functions names them ("Rekognition.XxxException").
# moto only knows DynamoDb and Sfn and falls back to the lower-case SDK name for the rest.
AWS_SDK_SERVICE_ERROR_NAMES: dict[str, str] = {
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "rekognition": "Rekognition",
    "s3": "S3",
    "sqs": "Sqs",
    "sns": "Sns",
    "lambda": "Lambda",
    "secretsmanager": "SecretsManager",
    "ssm": "Ssm",
    "eventbridge": "EventBridge",
    "cloudwatch": "CloudWatch",
}


def install(patches: PatchSet, *, time_scale: float, execution_timeout_scale: float = 1.0) -> None:
    """Apply the Step Functions fixes; ``patches.restore()`` undoes them.

    ``execution_timeout_scale`` multiplies every ``TimeoutSeconds``: the workflow's and each
    task's (a slower emulator's headroom, or a shorter wait in tests of timeouts).
    """
    if time_scale <= 0 or execution_timeout_scale <= 0:
        raise ValueError("time_scale and execution_timeout_scale must be positive")
    # CloudFormation creates state machines through the module-level backends; with execution
    # enabled the API serves the parser's backends, so both must be the same object.
    patches.replace(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)
    patches.replace(
        state_task_service_aws_sdk,
        "_SERVICE_ERROR_NAMES",
        {**state_task_service_aws_sdk._SERVICE_ERROR_NAMES, **AWS_SDK_SERVICE_ERROR_NAMES},
    )
    if time_scale != 1.0:
        _install_time_scale(patches, time_scale)
    if execution_timeout_scale != 1.0:
        _install_execution_timeout_scale(patches, execution_timeout_scale)


def _install_execution_timeout_scale(patches: PatchSet, scale: float) -> None:
    original_eval: Callable[[Any, Any], None] = Program.eval

    def scaled_eval(program: Any, env: Any) -> None:
        declared = program.timeout_seconds
        if declared is None or declared.is_default_value():
            original_eval(program, env)
            return
        # Program.eval joins its worker for timeout_seconds: a scaled copy of the program's
        # declaration (Final on the class, so a shallow copy) changes only this execution.
        scaled = copy.copy(program)
        object.__setattr__(
            scaled,
            "timeout_seconds",
            types.SimpleNamespace(timeout_seconds=max(0.01, declared.timeout_seconds * scale)),
        )
        original_eval(scaled, env)

    patches.replace(Program, "eval", scaled_eval)
    original_seconds: Callable[[Any, Any], int] = TimeoutSeconds._eval_seconds

    def scaled_seconds(timeout: Any, env: Any) -> float:
        seconds = original_seconds(timeout, env)
        # The default (no TimeoutSeconds declared) stays "practically forever".
        return seconds if timeout.is_default_value() else max(0.01, seconds * scale)

    patches.replace(TimeoutSeconds, "_eval_seconds", scaled_seconds)


def _install_time_scale(patches: PatchSet, time_scale: float) -> None:
    # Retry backoff sleeps through the module's own ``time`` reference.
    scaled_time = types.SimpleNamespace(
        sleep=lambda seconds: time.sleep(max(0.0, float(seconds)) * time_scale),
        time=time.time,
        monotonic=time.monotonic,
    )
    patches.replace(retrier_decl, "time", scaled_time)

    def scaled_wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # Wait states block on the execution's stop event so that StopExecution still
        # interrupts them; only the duration shrinks.
        if wait_seconds > 0:
            env.program_state_event.wait(float(wait_seconds) * time_scale)

    patches.replace(WaitFunction, "_wait_interval", scaled_wait_interval)


class StatusListener(Protocol):
    """Told each status change of an execution: RUNNING, then how it ended."""

    def changing(self) -> AbstractContextManager[None]:
        """Held from before a status changes until it has been reported (idle checks)."""
        ...

    def __call__(self, execution: Any, status: str) -> None:
        """Report ``status``, which moto's ``execution`` has just taken."""
        ...


TIMEOUT_ERROR = "States.Timeout"
# How long StopExecution waits for a just-started execution's interpreter to exist.
INTERPRETER_START_SECONDS = 2.0
_LOCKS_GUARD = threading.Lock()


def _lifecycle(execution: Any) -> Any:
    """The lock that serialises one execution's status changes: an execution ending while
    StopExecution aborts it has one end, and its RUNNING report comes before the end's."""
    with _LOCKS_GUARD:
        lock = execution.__dict__.get("_localcloud_lifecycle")
        if lock is None:
            lock = execution.__dict__["_localcloud_lifecycle"] = threading.RLock()
        return lock


class Interpreters:
    """How many ASL programs are being evaluated right now.

    An execution stopped or timed out is no longer RUNNING, yet its interpreter finishes the
    state it is in (a Lambda task returns) before it stops: that is still work in progress.
    """

    def __init__(self) -> None:
        self._running = 0
        self._lock = threading.Lock()

    def running(self) -> int:
        with self._lock:
            return self._running

    def _add(self, delta: int) -> None:
        with self._lock:
            self._running += delta


def install_end_states(patches: PatchSet, on_status_change: StatusListener) -> Interpreters:
    """Make executions end as in AWS and report their status changes to ``on_status_change``.

    Returns the count of interpreters at work, for idle checks.
    """
    for name in ("set_error", "set_timed_out"):
        patches.replace(Environment, name, _only_while_running(getattr(Environment, name)))
    _install_status_reports(patches, on_status_change)
    _install_stop(patches, on_status_change)
    _install_timed_out_stop_date(patches)
    interpreters = Interpreters()
    original_body: Callable[[Any, Any], None] = Program._eval_body

    def eval_body(program: Any, env: Any) -> None:
        interpreters._add(1)
        try:
            original_body(program, env)
        finally:
            interpreters._add(-1)

    patches.replace(Program, "_eval_body", eval_body)
    return interpreters


def _only_while_running(transition: Callable[..., None]) -> Callable[..., None]:
    # moto lets a late task failure overwrite a stop or a timeout (and a timeout overwrite a
    # stop): the first end of a program is its end.
    def guarded(env: Any, *args: Any, **kwargs: Any) -> None:
        with env._state_mutex:
            state = env._program_state
            if state is None or isinstance(state, ProgramRunning):
                transition(env, *args, **kwargs)

    return guarded


def _install_status_reports(patches: PatchSet, on_status_change: StatusListener) -> None:
    original_start: Callable[[Any], None] = Execution.start
    original_reflect: Callable[[Any], None] = (
        BaseExecutionWorkerCommunication._reflect_execution_status
    )

    def start(execution: Any) -> None:
        # The interpreter's thread reports the end under the same lock, so after this.
        with _lifecycle(execution), on_status_change.changing():
            original_start(execution)
            on_status_change(execution, ExecutionStatus.RUNNING.value)

    def reflect(communication: Any) -> None:
        execution = communication.execution
        with _lifecycle(execution), on_status_change.changing():
            if execution.exec_status != ExecutionStatus.RUNNING:
                return  # already ended by StopExecution
            original_reflect(communication)
            if execution.exec_status == ExecutionStatus.TIMED_OUT:
                execution.error = TIMEOUT_ERROR
            on_status_change(execution, execution.exec_status.value)

    patches.replace(Execution, "start", start)
    patches.replace(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect)
    # moto lists an execution a moment before start() gives it a status; ListExecutions or
    # DescribeExecution in that moment failed on None. It is starting: RUNNING.
    patches.replace(
        Execution,
        "status",
        property(lambda execution: (execution.exec_status or ExecutionStatus.RUNNING).value),
    )


def abort_execution(
    execution: Any, *, error: str | None, cause: str | None, on_status_change: StatusListener
) -> None:
    """End a running execution ABORTED now; its interpreter stops at the next state."""
    _wait_for(lambda: execution.exec_status is not None)  # StartExecution may still be under way
    with _lifecycle(execution), on_status_change.changing():
        if execution.exec_status != ExecutionStatus.RUNNING:
            return
        execution.stop_date = datetime.datetime.now(tz=datetime.UTC)
        execution.exec_status = ExecutionStatus.ABORTED
        execution.error = error
        execution.cause = cause
        on_status_change(execution, ExecutionStatus.ABORTED.value)
    env = _wait_for_interpreter(execution)
    if env is not None:
        env.set_stop(stop_date=execution.stop_date, cause=cause, error=error)


def time_out_execution(execution: Any) -> bool:
    """Make a running execution's timeout elapse now (a fault for chaos runs).

    The interpreter takes the path a real timeout takes (``set_timed_out``): the execution
    ends TIMED_OUT with States.Timeout once its current state returns, and enters no other.
    Returns False when the execution was no longer running.
    """
    _wait_for(lambda: execution.exec_status is not None)
    env = _wait_for_interpreter(execution)
    if env is None:
        return False
    env.set_timed_out()
    return True


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + INTERPRETER_START_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _wait_for_interpreter(execution: Any) -> Any:
    # The interpreter's environment is built on the execution's own thread, a moment after
    # StartExecution returns; a stop in between must still reach it.
    def environment() -> Any:
        worker = execution.exec_worker
        return None if worker is None else worker.env

    def started() -> bool:
        env = environment()
        return env is not None and env.program_state() is not None

    if not _wait_for(started):
        return None
    env = environment()
    return env if env.is_running() else None  # it may have ended on its own meanwhile


def _install_stop(patches: PatchSet, on_status_change: StatusListener) -> None:
    # moto's StopExecution ignores error and cause, answers without stopDate, and leaves the
    # execution RUNNING until its current task ends (TIMED_OUT if its timeout fires first).
    def stop_execution(response: Any) -> ActionResult:
        execution = response.stepfunction_backend.describe_execution(
            response._get_param("executionArn")
        )
        abort_execution(
            execution,
            error=response._get_param("error"),
            cause=response._get_param("cause"),
            on_status_change=on_status_change,
        )
        return ActionResult({"stopDate": execution.stop_date})

    patches.replace(StepFunctionResponse, "stop_execution", stop_execution)


def _install_timed_out_stop_date(patches: PatchSet) -> None:
    # moto's DescribeExecution and ListExecutions leave stopDate out for TIMED_OUT.
    original_describe = StepFunctionResponse.describe_execution
    original_list = StepFunctionResponse.list_executions

    def describe_execution(response: Any) -> ActionResult:
        result = original_describe(response)
        body: dict[str, Any] = result.result  # type: ignore[assignment]
        if body["status"] == ExecutionStatus.TIMED_OUT:
            execution = response.stepfunction_backend.describe_execution(body["executionArn"])
            body["stopDate"] = execution.stop_date
        return result

    def list_executions(response: Any) -> ActionResult:
        result = original_list(response)
        body: dict[str, Any] = result.result  # type: ignore[assignment]
        for item in body["executions"]:
            if item["status"] == ExecutionStatus.TIMED_OUT:
                execution = response.stepfunction_backend.describe_execution(item["executionArn"])
                item["stopDate"] = execution.stop_date
        return result

    patches.replace(StepFunctionResponse, "describe_execution", describe_execution)
    patches.replace(StepFunctionResponse, "list_executions", list_executions)
