"""The events ExecutionCloserFunction receives, and the dead letter it writes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The letter and the statuses are shared with the classifier, which closes Express executions.
from common.closing import DetectedBy, ExecutionStatus, WorkflowDeadLetter

__all__ = ["DetectedBy", "ExecutionStatus", "WorkflowDeadLetter"]

STATUS_CHANGE = "Step Functions Execution Status Change"
SCHEDULED = "Scheduled Event"


# The statuses that need a dead letter.
UNSUCCESSFUL = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED}
)

# What an ended execution's error is called when Step Functions gives none (an abort without
# an error, a timeout reported without one).
DEFAULT_ERRORS = {
    ExecutionStatus.FAILED: "ExecutionFailed",
    ExecutionStatus.TIMED_OUT: "States.Timeout",
    ExecutionStatus.ABORTED: "ExecutionAborted",
}


# What Step Functions can put in a status-change event: an error of at most 256 characters, a
# cause of at most 32,768, and an input of at most 256 KiB (the most an EventBridge event holds).
# Anything longer did not come from Step Functions through EventBridge.
MAX_EVENT_ERROR_CHARS = 256
MAX_EVENT_CAUSE_CHARS = 32_768
MAX_EVENT_INPUT_CHARS = 262_144

# The models below with defer_build are used only to close an execution: a status-change event
# (the rule sends only unsuccessful ones) or a claim the sweep found expired. Most invocations
# are sweep ticks that close nothing, so pydantic builds their validators when one is first
# used, not at every cold start (README, Cold start). ScheduledEvent, which every tick
# validates, is built at init.


class StatusChangeDetail(BaseModel):
    """``detail`` of a Step Functions Execution Status Change event (fields we use)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    executionArn: Annotated[str, Field(min_length=1, max_length=2_048)]
    stateMachineArn: Annotated[str, Field(min_length=1, max_length=2_048)]
    status: ExecutionStatus
    # Absent or null when the input was larger than the event allows (inputDetails.included).
    input: Annotated[str | None, Field(max_length=MAX_EVENT_INPUT_CHARS)] = None
    error: Annotated[str | None, Field(max_length=MAX_EVENT_ERROR_CHARS)] = None
    cause: Annotated[str | None, Field(max_length=MAX_EVENT_CAUSE_CHARS)] = None

    @model_validator(mode="after")
    def _execution_of_the_state_machine(self) -> Self:
        # A Standard execution's ARN is its state machine's with ":execution:" and a name: an
        # event naming an execution of another machine would make the closer letter (and mark
        # FAILED) what this state machine never ran.
        prefix, separator, machine = self.stateMachineArn.partition(":stateMachine:")
        name = self.executionArn.removeprefix(f"{prefix}:execution:{machine}:")
        if not separator or name == self.executionArn or not name or ":" in name:
            raise ValueError("executionArn is not an execution of stateMachineArn")
        return self


class StatusChangeEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    detail_type: Annotated[
        Literal["Step Functions Execution Status Change"], Field(alias="detail-type")
    ]
    source: Literal["aws.states"]
    detail: StatusChangeDetail


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    detail_type: Annotated[Literal["Scheduled Event"], Field(alias="detail-type")]
    source: Literal["aws.events"]


class EndedExecution(BaseModel):
    """An execution that ended without success, as far as it is known."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    arn: str
    status: ExecutionStatus
    error: str
    cause: str
    input: str | None
    # The claim keeps the route message as JSON: the letter's source when the input is gone.
    claimed_message: str | None = None
    detected_by: DetectedBy


class CloseOutcome(StrEnum):
    """How one ended execution was handled; each value is a metric name."""

    DEAD_LETTERED = "ExecutionDeadLettered"
    ALREADY_CLOSED = "ExecutionAlreadyClosed"
