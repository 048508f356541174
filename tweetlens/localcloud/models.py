"""Typed views of what the local cloud deployed and of what its Lambda runtime did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FunctionConfig(_Frozen):
    """A deployed function as Lambda describes it, plus where its code lives on disk."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_uri: Path
    timeout: int = Field(ge=1, le=900)
    memory_size: int = Field(ge=128, le=10240)
    environment: dict[str, str]
    reserved_concurrency: int | None = Field(default=None, ge=0)


class EventSourceMappingConfig(_Frozen):
    """An SQS event source mapping, with the settings Lambda's poller honours."""

    uuid: str
    function_name: str
    event_source_arn: str
    queue_url: str
    batch_size: int = Field(ge=1, le=10000)
    maximum_batching_window_seconds: int = Field(ge=0, le=300)
    report_batch_item_failures: bool
    maximum_concurrency: int | None = Field(default=None, ge=2, le=1000)
    enabled: bool


TargetKind = Literal["lambda", "sqs", "states"]


class InputTransformerConfig(_Frozen):
    """A target's ``InputTransformer``: variables from JSON paths, and the template using them."""

    input_paths_map: dict[str, str] = Field(default_factory=dict)
    input_template: str


class RuleTargetConfig(_Frozen):
    """One target of an EventBridge rule, of a kind the local cloud delivers to."""

    id: str
    arn: str
    kind: TargetKind
    input: str | None = None
    input_path: str | None = None
    input_transformer: InputTransformerConfig | None = None
    message_group_id: str | None = None


class EventRuleConfig(_Frozen):
    """An EventBridge rule: a schedule or an event pattern on a bus, and its targets."""

    logical_id: str
    name: str
    arn: str
    event_bus_name: str
    enabled: bool
    schedule_expression: str | None = None
    event_pattern: dict[str, Any] | None = None
    targets: list[RuleTargetConfig]


class StateMachineLogging(_Frozen):
    """A state machine's ``LoggingConfiguration`` as the template declares it."""

    level: Literal["ALL", "ERROR", "FATAL", "OFF"]
    include_execution_data: bool = False
    # ``arn:aws:logs:<region>:<account>:log-group:<name>:*``
    log_group_arn: str | None = None

    @property
    def log_group_name(self) -> str:
        if self.log_group_arn is None:
            return ""
        _, _, rest = self.log_group_arn.partition(":log-group:")
        return rest.removesuffix(":*")


class StateMachineConfig(_Frozen):
    """A state machine, with its definition after substitutions and its declared type."""

    logical_id: str
    arn: str
    name: str
    definition: str
    type: Literal["STANDARD", "EXPRESS"]
    logging: StateMachineLogging | None = None


class LambdaError(_Frozen):
    """A function error in the shape Lambda returns it."""

    error_type: str
    error_message: str
    stack_trace: list[str] = Field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        return {
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stackTrace": self.stack_trace,
        }


class InvocationResult(_Frozen):
    """One invocation: the returned payload or the error, its REPORT line and its logs."""

    function_name: str
    request_id: str
    payload_json: str | None
    error: LambdaError | None
    report: str
    logs: str
    duration_ms: float
    cold_start: bool
    init_duration_ms: float | None = None
    timed_out: bool = False
    started_at: float
    ended_at: float

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def payload(self) -> Any:
        """The handler's return value decoded from JSON (``None`` when it errored)."""
        return None if self.payload_json is None else json.loads(self.payload_json)

    def wire_payload(self) -> str:
        """What Lambda's Invoke API returns as the response body."""
        if self.error is not None:
            return json.dumps(self.error.to_payload())
        return self.payload_json if self.payload_json is not None else "null"


class InvocationRecord(_Frozen):
    """History entry of one invocation, kept for inspection after the fact."""

    function_name: str
    request_id: str
    report: str
    error_type: str | None
    error_message: str | None
    logs: str
    cold_start: bool
    started_at: float
    ended_at: float


class EventDelivery(_Frozen):
    """One event handed to one rule target, and what came of it.

    ``detail`` is the SQS message id, the execution ARN, or the Lambda request id (for an
    asynchronous invocation, of its first attempt) when delivered; the reason otherwise.
    """

    rule_logical_id: str
    target_id: str
    target_arn: str
    kind: TargetKind
    event_id: str
    payload: str | None
    delivered: bool
    detail: str
    at: float


class BusEvent(_Frozen):
    """An event accepted on an event bus, with the deployed rules it matched."""

    bus_name: str
    event: dict[str, Any]
    matched_rules: list[str]
    at: float


class AsyncInvocationRecord(_Frozen):
    """An asynchronous invocation after its last attempt (Lambda retries function errors)."""

    function_name: str
    source: str
    attempts: int
    error_type: str | None
    error_message: str | None
    request_ids: list[str]

    @property
    def succeeded(self) -> bool:
        return self.error_type is None


class IdleStatus(_Frozen):
    """What is still moving in the cloud; ``idle`` when nothing is.

    ``idle`` is also False when work started while the status was being read: a snapshot
    taken across a hand-over (an event turning into an invocation) is not trusted.
    ``running_interpreters`` counts state machine programs still evaluating a state, which
    includes executions already stopped or timed out whose current task has not returned.
    """

    idle: bool
    visible_messages: int
    in_flight_messages: int
    running_executions: int
    in_flight_invocations: int
    in_flight_batches: int
    pending_events: int = 0
    pending_async_invocations: int = 0
    running_interpreters: int = 0
