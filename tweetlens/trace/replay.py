"""Replaying a ``GetExecutionHistory`` against its definition: the path the execution took.

Events are boto3's shape: ``timestamp``, ``type``, ``id``, ``previousEventId`` and one
``<type>EventDetails`` member.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

from tweetlens.trace.definition import state_index
from tweetlens.trace.model import (
    ExecutionStatus,
    ExecutionTrace,
    HistoryEvent,
    Outcome,
    StateVisit,
    StepError,
    TraceError,
    Transition,
)

# Events that start one attempt of a task, and events that end an attempt in failure.
_ATTEMPT_EVENTS: Final = frozenset(
    {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
)
_FAILURE_EVENTS: Final = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "ActivityFailed",
        "ActivityTimedOut",
        "ActivityScheduleFailed",
        "MapStateFailed",
        "ParallelStateFailed",
    }
)
_SUCCESS_EVENTS: Final = frozenset(
    {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"}
)
_END_STATUS: Final[Mapping[str, ExecutionStatus]] = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
_CONTAINER_TYPES: Final = frozenset({"Map", "Parallel"})


def _parse_events(events: Sequence[Mapping[str, object]]) -> list[HistoryEvent]:
    parsed = [HistoryEvent.model_validate(event) for event in events]
    if not parsed or parsed[0].type != "ExecutionStarted":
        raise TraceError("a history must start with an ExecutionStarted event")
    return sorted(parsed, key=lambda event: event.id)


def _error_of(event: HistoryEvent) -> StepError:
    details = event.details()
    return StepError(
        error=str(details.get("error", event.type)), cause=str(details.get("cause", ""))
    )


def _iteration(
    event: HistoryEvent,
    within: tuple[str, ...],
    iteration_of: Mapping[str, int],
    iteration_of_event: Mapping[int, int],
    visit_of_event: Mapping[int, StateVisit],
) -> int | None:
    """The Map iteration a state entry belongs to, followed through ``previousEventId``.

    Iterations run concurrently, so their events interleave: the latest
    MapIterationStarted is only a fallback for histories without event links.
    """
    if not within:
        return None
    if event.previous_event_id in iteration_of_event:
        return iteration_of_event[event.previous_event_id]
    previous = visit_of_event.get(event.previous_event_id)
    if previous is not None and previous.within == within:
        return previous.iteration
    return iteration_of.get(within[-1])


class _Replay:
    """The state of a history replay: visits so far, open ones, and what each event belongs to."""

    def __init__(self, index: Mapping[str, tuple[str, tuple[str, ...]]]) -> None:
        self.index = index
        self.visits: list[StateVisit] = []
        self.open_visits: list[StateVisit] = []
        self.visit_of_event: dict[int, StateVisit] = {}
        self.iteration_of: dict[str, int] = {}
        self.iteration_of_event: dict[int, int] = {}
        self.status: ExecutionStatus = "RUNNING"
        self.stopped_at: datetime.datetime | None = None
        self.execution_error: StepError | None = None

    def event(self, event: HistoryEvent) -> None:
        kind = event.type
        if kind.endswith("StateEntered"):
            self.entered(event)
        elif kind.endswith("StateExited"):
            self.exited(event)
        elif kind == "MapIterationStarted":
            details = event.details()
            self.iteration_of[str(details.get("name", ""))] = int(details.get("index", 0))
            self.iteration_of_event[event.id] = int(details.get("index", 0))
        elif kind.startswith(("Map", "Parallel")):
            # Container events chain to inner states' events: attribute them by scope.
            container = _latest_open(self.open_visits, lambda v: v.type in _CONTAINER_TYPES)
            if container is not None and kind in _FAILURE_EVENTS:
                container.errors.append(_error_of(event))
                container.last_attempt_failed = True
        elif kind in _ATTEMPT_EVENTS or kind in _FAILURE_EVENTS or kind in _SUCCESS_EVENTS:
            self.task(event)
        elif kind in _END_STATUS:
            self.status = _END_STATUS[kind]
            self.stopped_at = event.timestamp
            if self.status != "SUCCEEDED":
                self.execution_error = _error_of(event)
        elif event.previous_event_id in self.visit_of_event:
            self.visit_of_event[event.id] = self.visit_of_event[event.previous_event_id]

    def entered(self, event: HistoryEvent) -> None:
        name = str(event.details().get("name", ""))
        state_type, within = self.index.get(name, (event.type.removesuffix("StateEntered"), ()))
        iteration = _iteration(
            event, within, self.iteration_of, self.iteration_of_event, self.visit_of_event
        )
        entered = StateVisit(
            name=name,
            type=state_type,
            within=within,
            iteration=iteration,
            entered_at=event.timestamp,
        )
        self.visits.append(entered)
        self.open_visits.append(entered)
        self.visit_of_event[event.id] = entered

    def exited(self, event: HistoryEvent) -> None:
        exited = _latest_named(self.open_visits, str(event.details().get("name", "")))
        if exited is not None:
            exited.exited_at = event.timestamp
            self.open_visits.remove(exited)
            self.visit_of_event[event.id] = exited

    def task(self, event: HistoryEvent) -> None:
        """An attempt of a task starting, failing or succeeding."""
        visit = self.visit_of_event.get(event.previous_event_id) or _latest_open(
            self.open_visits, lambda v: v.type not in _CONTAINER_TYPES
        )
        if visit is None:
            return
        self.visit_of_event[event.id] = visit
        if event.type in _ATTEMPT_EVENTS:
            visit.attempts += 1
            visit.last_attempt_failed = False
        elif event.type in _FAILURE_EVENTS:
            visit.errors.append(_error_of(event))
            visit.last_attempt_failed = True
        else:
            visit.last_attempt_failed = False


def build_trace(
    definition: Mapping[str, Any], events: Sequence[Mapping[str, object]]
) -> ExecutionTrace:
    """Replay a history against its definition; see the module docstring."""
    history = _parse_events(events)
    replay = _Replay(state_index(definition))
    for event in history:
        replay.event(event)
    visits, status = replay.visits, replay.status
    transitions = _transitions(visits)
    for visit in visits:
        visit.outcome = _outcome(visit, status)
    for transition in transitions:
        if transition.kind == "catch":
            for visit in visits:
                if visit.name == transition.source and visit.outcome == "caught":
                    visit.caught_to = transition.target
    failed_state, error = _failure(visits, status, replay.execution_error)
    return ExecutionTrace(
        status=status,
        started_at=history[0].timestamp,
        stopped_at=replay.stopped_at,
        visits=visits,
        transitions=transitions,
        failed_state=failed_state,
        error=error,
        execution_error=replay.execution_error,
    )


def _latest_named(open_visits: list[StateVisit], name: str) -> StateVisit | None:
    for visit in reversed(open_visits):
        if visit.name == name:
            return visit
    return None


def _latest_open(
    open_visits: list[StateVisit], accept: Callable[[StateVisit], bool]
) -> StateVisit | None:
    for visit in reversed(open_visits):
        if accept(visit):
            return visit
    return None


def _transitions(visits: list[StateVisit]) -> list[Transition]:
    """Consecutive visits in the same scope (top level, or one Map iteration)."""
    last_in_scope: dict[tuple[tuple[str, ...], int | None], StateVisit] = {}
    transitions: list[Transition] = []
    for visit in visits:
        scope = (visit.within, visit.iteration)
        previous = last_in_scope.get(scope)
        if previous is not None:
            kind: Literal["next", "catch"] = "catch" if previous.last_attempt_failed else "next"
            transitions.append(Transition(source=previous.name, target=visit.name, kind=kind))
        last_in_scope[scope] = visit
    return transitions


def _outcome(visit: StateVisit, status: ExecutionStatus) -> Outcome:
    if visit.exited_at is not None:
        return "caught" if visit.last_attempt_failed else "succeeded"
    if visit.type == "Fail":
        return "failed"
    if status == "RUNNING":
        return "running"
    if status == "TIMED_OUT":
        return "timed_out"
    if status == "ABORTED":
        return "aborted"
    if status == "FAILED":
        return "failed"
    return "succeeded"


def _failure(
    visits: list[StateVisit], status: ExecutionStatus, execution_error: StepError | None
) -> tuple[str | None, StepError | None]:
    """The state whose error ended the execution, and that error."""
    if status == "SUCCEEDED":
        return None, None
    for visit in reversed(visits):
        if visit.errors and visit.outcome in {"failed", "caught", "timed_out"}:
            return visit.name, visit.errors[-1]
    for visit in reversed(visits):
        if visit.outcome in {"failed", "timed_out", "aborted"}:
            return visit.name, execution_error
    return None, execution_error
