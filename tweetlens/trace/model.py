"""What an execution did: the states it entered, their attempts and errors, how it ended."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["succeeded", "caught", "failed", "running", "timed_out", "aborted"]
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


class TraceError(Exception):
    """The history or the definition cannot be read as a Step Functions execution."""


class HistoryEvent(BaseModel):
    """One ``GetExecutionHistory`` event; the ``<type>EventDetails`` member stays as given."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    timestamp: datetime.datetime
    type: str
    id: int
    previous_event_id: int = Field(default=0, alias="previousEventId")

    def details(self) -> dict[str, Any]:
        key = self.type[0].lower() + self.type[1:] + "EventDetails"
        value = (self.model_extra or {}).get(key)
        if value is None and self.type.endswith("StateEntered"):
            value = (self.model_extra or {}).get("stateEnteredEventDetails")
        if value is None and self.type.endswith("StateExited"):
            value = (self.model_extra or {}).get("stateExitedEventDetails")
        return value if isinstance(value, dict) else {}


class StepError(BaseModel):
    model_config = ConfigDict(frozen=True)

    error: str
    cause: str = ""


class StateVisit(BaseModel):
    """One entry into a state, up to its exit (or the end of the history)."""

    name: str
    type: str
    # Names of the Map/Parallel states this visit runs inside, outermost first.
    within: tuple[str, ...] = ()
    iteration: int | None = None
    entered_at: datetime.datetime
    exited_at: datetime.datetime | None = None
    attempts: int = 0
    errors: list[StepError] = []
    last_attempt_failed: bool = False
    outcome: Outcome = "running"
    # Where a caught error went (the Catch's Next), when ``outcome == "caught"``.
    caught_to: str | None = None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def duration(self) -> datetime.timedelta | None:
        return None if self.exited_at is None else self.exited_at - self.entered_at


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    kind: Literal["next", "catch"]


class ExecutionTrace(BaseModel):
    """The path one execution took through its state machine."""

    status: ExecutionStatus
    started_at: datetime.datetime
    stopped_at: datetime.datetime | None
    visits: list[StateVisit]
    transitions: list[Transition]
    failed_state: str | None = None
    # The error of the failing state (what went wrong), and the execution's own end error
    # (what a Fail state or the service reported); they differ when a Catch led to a Fail.
    error: StepError | None = None
    execution_error: StepError | None = None
