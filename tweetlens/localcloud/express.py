"""``StartSyncExecution`` for EXPRESS state machines, with Express semantics and logs.

moto's server has no ``StartSyncExecution`` (its parser carries LocalStack's provider, which
is not wired to the server), and its CloudFormation creates every machine STANDARD. The local
cloud knows each machine's declared type and logging from the template and adds the call:

* only for machines declared ``EXPRESS`` (``StateMachineTypeNotSupported`` otherwise);
* no name idempotency: every call starts a new execution, ARN
  ``arn:…:express:<machine>:<name>:<uuid>``, never listed nor described (as in AWS:
  ``DescribeExecution``, ``ListExecutions`` and ``GetExecutionHistory`` do not serve Express);
* the 5-minute limit: an execution still running after ``EXPRESS_LIMIT_SECONDS`` (scaled by
  ``execution_timeout_scale``, like every Step Functions timeout of the local cloud) ends
  ``TIMED_OUT`` with ``States.Timeout``, whatever its ``TimeoutSeconds``;
* the synchronous answer of AWS: status ``SUCCEEDED | FAILED | TIMED_OUT`` (an aborted
  execution reports ``FAILED``), ``output`` on success, ``error`` and ``cause`` otherwise, and
  ``billingDetails`` (duration rounded up to 100 ms, memory at least 64 MB);
* execution logs in the machine's CloudWatch log group, one JSON event per history event in
  AWS's Express format (``id``, ``type``, ``details``, ``previous_event_id``,
  ``event_timestamp``, ``execution_arn``, ``redrive_count``), filtered by the machine's
  ``LoggingConfiguration`` level (``ALL | ERROR | FATAL | OFF``) and ``IncludeExecutionData``;
* ``ListExecutions`` on an EXPRESS machine answers ``StateMachineTypeNotSupported`` (HTTP 400),
  as AWS does: a tool that lists executions learns here, not first in AWS, that Express has
  none to list;
* ``DescribeStateMachine`` answers with the declared ``type`` and ``loggingConfiguration``
  (level, execution data, log group), as AWS does: tools learn from it whether executions are
  listed or only logged, and where.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.logs.models import logs_backends
from moto.stepfunctions.parser.api import ExecutionStatus, StateMachineType
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.responses import StepFunctionResponse

from tweetlens.localcloud import stepfunctions
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.models import StateMachineConfig, StateMachineLogging

# Express workflows run at most five minutes (Step Functions quotas).
EXPRESS_LIMIT_SECONDS = 300.0
# Express bills each execution in 100 ms steps, with 64 MB as the least memory billed.
BILLING_STEP_MS = 100
MIN_BILLED_MEMORY_MB = 64
# The memory an execution of the local cloud is billed for: its input and output are small,
# so the minimum (a local interpreter's memory says nothing about AWS's).
BILLED_MEMORY_MB = MIN_BILLED_MEMORY_MB

# History event types logged at level ERROR (the failures) and FATAL (how an execution ended
# without success), as the Step Functions developer guide lists them per log level.
FATAL_EVENTS = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
ERROR_EVENTS = FATAL_EVENTS | frozenset(
    {
        "ActivityFailed",
        "ActivityScheduleFailed",
        "ActivityTimedOut",
        "LambdaFunctionFailed",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStartFailed",
        "LambdaFunctionTimedOut",
        "MapIterationFailed",
        "MapIterationAborted",
        "MapRunFailed",
        "MapRunAborted",
        "ParallelStateFailed",
        "TaskFailed",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "TaskTimedOut",
        "EvaluationFailed",
    }
)
# Detail fields that carry execution data: left out unless IncludeExecutionData is true.
DATA_FIELDS = frozenset({"input", "output", "parameters", "inputDetails", "outputDetails"})


class StateMachineTypeNotSupported(JsonRESTError):
    def __init__(self) -> None:
        super().__init__(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        )


class StateMachineDoesNotExist(JsonRESTError):
    def __init__(self, arn: str) -> None:
        super().__init__("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")


class ExpressExecutions:
    """The EXPRESS machines of a deployment and their running executions."""

    def __init__(self, *, execution_timeout_scale: float) -> None:
        self._machines: dict[str, StateMachineConfig] = {}
        self._running: dict[str, Execution] = {}
        self._lock = threading.Lock()
        self.limit_seconds = EXPRESS_LIMIT_SECONDS * execution_timeout_scale

    def declare(self, machines: Mapping[str, StateMachineConfig]) -> None:
        with self._lock:
            self._machines = {m.arn: m for m in machines.values()}

    def machine(self, arn: str) -> StateMachineConfig | None:
        with self._lock:
            return self._machines.get(arn)

    def running(self, execution_arn: str) -> Execution | None:
        """A running Express execution by ARN (for fault injection)."""
        with self._lock:
            return self._running.get(execution_arn)

    def running_inputs(self) -> dict[str, Any]:
        """ARN → input (parsed JSON) of each running Express execution, for fault injection.

        Express executions are not listed by ``ListExecutions``: a fault that picks one to time
        out (``LocalCloud.time_out_execution``) finds it here, by what it was started with.
        """
        with self._lock:
            return {arn: execution.input_data for arn, execution in self._running.items()}

    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def _track(self, execution: Execution, running: bool) -> None:
        with self._lock:
            if running:
                self._running[execution.exec_arn] = execution
            else:
                self._running.pop(execution.exec_arn, None)


def install(
    patches: PatchSet,
    executions: ExpressExecutions,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Serve ``StartSyncExecution`` from the emulator's Step Functions API."""

    def start_sync_execution(response: Any) -> ActionResult:
        arn = response._get_param("stateMachineArn")
        config = executions.machine(arn)
        backend = response.stepfunction_backend
        if config is None:
            raise StateMachineDoesNotExist(arn)
        if config.type != "EXPRESS":
            raise StateMachineTypeNotSupported()
        name = response._get_param("name") or str(uuid.uuid4())
        execution = _new_execution(backend, arn, name, response._get_param("input", if_none="{}"))
        executions._track(execution, running=True)
        started = clock()
        try:
            execution.start()
            _wait(execution, executions.limit_seconds, clock, started)
        finally:
            executions._track(execution, running=False)
        # Logging happens after the end, as AWS delivers Express logs asynchronously.
        _write_logs(config, execution)
        return ActionResult(sync_output(execution, billed_ms=(clock() - started) * 1_000))

    original_list = StepFunctionResponse.list_executions

    def list_executions(response: Any) -> ActionResult:
        # AWS lists no Express execution: it refuses the call rather than answer an empty
        # list, which a tool would take for "nothing ran" (moto answered with an empty list).
        config = executions.machine(response._get_param("stateMachineArn"))
        if config is not None and config.type == "EXPRESS":
            raise StateMachineTypeNotSupported()
        return original_list(response)

    original_describe = StepFunctionResponse._describe_state_machine

    def describe_state_machine(response: Any, state_machine_arn: str) -> ActionResult:
        described = original_describe(response, state_machine_arn)
        config = executions.machine(state_machine_arn)
        body = described.result
        # moto's CloudFormation made every machine STANDARD with logging OFF: say what the
        # template declared. (DescribeStateMachineForExecution goes through here too.)
        if config is not None and isinstance(body, dict):
            body["type"] = config.type
            body["loggingConfiguration"] = logging_configuration(config.logging)
        return described

    # moto dispatches an action to the response method of the same (snake_case) name.
    patches.replace(StepFunctionResponse, "start_sync_execution", start_sync_execution)
    patches.replace(StepFunctionResponse, "_describe_state_machine", describe_state_machine)
    patches.replace(StepFunctionResponse, "list_executions", list_executions)


def logging_configuration(logging: StateMachineLogging | None) -> dict[str, Any]:
    """A machine's logging as ``DescribeStateMachine`` shows it (``OFF`` when undeclared)."""
    if logging is None:
        return {"level": "OFF", "includeExecutionData": False}
    described: dict[str, Any] = {
        "level": logging.level,
        "includeExecutionData": logging.include_execution_data,
    }
    if logging.log_group_arn is not None:
        described["destinations"] = [
            {"cloudWatchLogsLogGroup": {"logGroupArn": logging.log_group_arn}}
        ]
    return described


class _EndSignal(BaseExecutionWorkerCommunication):
    """moto's report of an execution's end, which also wakes the caller waiting for it."""

    def __init__(self, execution: _SyncExecution) -> None:
        super().__init__(execution)
        self._ended = execution.ended

    def terminated(self) -> None:
        try:
            super().terminated()
        finally:
            self._ended.set()


class _SyncExecution(Execution):
    """An Express execution whose caller sleeps until it ends.

    The caller used to look at the execution's status every 5 ms: with ten executions in
    flight, 2,000 wake-ups a second, each taking the GIL from the emulator's busy threads.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ended = threading.Event()

    def _get_start_execution_worker_comm(self) -> BaseExecutionWorkerCommunication:
        return _EndSignal(self)


def _new_execution(backend: Any, arn: str, name: str, execution_input: str) -> _SyncExecution:
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise JsonRESTError("InvalidExecutionInput", str(exc)) from exc
    machine = backend.describe_state_machine(arn)
    # A snapshot of the definition, as StartExecution takes (see moto issue #10077 for why the
    # executions and the backend are shared, not copied).
    clone = copy.deepcopy(
        machine, {id(machine.executions): [], id(machine.backend): machine.backend}
    )
    clone.sm_type = StateMachineType.EXPRESS
    prefix, _, machine_name = arn.partition(":stateMachine:")
    execution_arn = f"{prefix}:express:{machine_name}:{name}:{uuid.uuid4()}"
    return _SyncExecution(
        name=name,
        sm_type=StateMachineType.EXPRESS,
        role_arn=clone.roleArn,
        exec_arn=execution_arn,
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=datetime.datetime.now(tz=datetime.UTC),
        cloud_watch_logging_session=None,
        input_data=execution_input,
        trace_header=None,
        activity_store={},
    )


def _wait(
    execution: _SyncExecution, limit: float, clock: Callable[[], float], started: float
) -> None:
    # Until the end, or the Express limit, whatever the workflow's own TimeoutSeconds says.
    if execution.ended.wait(max(0.0, limit - (clock() - started))):
        return
    # The interpreter ends TIMED_OUT once the state it is in returns (at once if the execution
    # ended meanwhile: then nothing is timed out).
    stepfunctions.time_out_execution(execution)
    execution.ended.wait()


def sync_output(execution: Execution, *, billed_ms: float) -> dict[str, Any]:
    """The StartSyncExecution response of an execution that ended."""
    status = execution.exec_status
    # SyncExecutionStatus has no ABORTED: a stopped synchronous execution reports FAILED.
    sync_status = (
        status.value
        if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.TIMED_OUT)
        else ExecutionStatus.FAILED.value
    )
    body: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date or datetime.datetime.now(tz=datetime.UTC),
        "status": sync_status,
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "inputDetails": {"included": True},
        "billingDetails": {
            "billedMemoryUsedInMB": BILLED_MEMORY_MB,
            "billedDurationInMilliseconds": max(
                BILLING_STEP_MS, math.ceil(billed_ms / BILLING_STEP_MS) * BILLING_STEP_MS
            ),
        },
    }
    if sync_status == ExecutionStatus.SUCCEEDED.value:
        body["output"] = json.dumps(execution.output, separators=(",", ":"))
        body["outputDetails"] = {"included": True}
    else:
        if execution.error is not None:
            body["error"] = execution.error
        if execution.cause is not None:
            body["cause"] = execution.cause
    return body


def history_events(execution: Execution) -> list[dict[str, Any]]:
    worker = execution.exec_worker
    if worker is None or worker.env is None:
        return []
    # HistoryEvent is a TypedDict: the same dicts, read generically.
    return [dict(event) for event in worker.env.event_manager.get_event_history()]


def log_events(
    logging: StateMachineLogging, execution_arn: str, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """History events as Express log records (``message`` JSON, ``timestamp`` in ms)."""
    if logging.level == "OFF":
        return []
    chosen = {"ALL": None, "ERROR": ERROR_EVENTS, "FATAL": FATAL_EVENTS}[logging.level]
    records: list[dict[str, Any]] = []
    for event in events:
        event_type = str(getattr(event["type"], "value", event["type"]))
        if chosen is not None and event_type not in chosen:
            continue
        details: dict[str, Any] = {}
        for key, value in event.items():
            if key.endswith("EventDetails") and isinstance(value, dict):
                details = {
                    k: v
                    for k, v in value.items()
                    if logging.include_execution_data or k not in DATA_FIELDS
                }
        millis = _epoch_millis(event["timestamp"])
        message = {
            "id": str(event["id"]),
            "type": event_type,
            "details": details,
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": str(millis),
            "execution_arn": execution_arn,
            "redrive_count": "0",
        }
        records.append({"timestamp": millis, "message": json.dumps(message, default=_json_default)})
    return records


def log_stream_name(machine_name: str, moment: datetime.datetime) -> str:
    """Express log streams are named ``states/<machine>/<date-time>/<id>``."""
    return f"states/{machine_name}/{moment:%Y-%m-%d-%H-%M}/{uuid.uuid4().hex[:8]}"


def _write_logs(config: StateMachineConfig, execution: Execution) -> None:
    logging = config.logging
    if logging is None:
        return
    records = log_events(logging, execution.exec_arn, history_events(execution))
    if not records:
        return
    backend = logs_backends[execution.account_id][execution.region_name]
    group = logging.log_group_name
    if group not in backend.groups:
        return  # AWS drops what it cannot deliver; the execution's result is unaffected.
    stream = log_stream_name(config.name, execution.start_date)
    backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, records)


def _epoch_millis(timestamp: Any) -> int:
    # moto keeps history timestamps as ISO 8601 text ("2026-12-02T03:35:31.677Z").
    if not isinstance(timestamp, datetime.datetime):
        timestamp = datetime.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    return int(timestamp.timestamp() * 1_000)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
