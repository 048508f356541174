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


def build_trace(
    definition: Mapping[str, Any], events: Sequence[Mapping[str, object]]
) -> ExecutionTrace:
    """Replay a history against its definition; see the module docstring."""
    index = state_index(definition)
    history = _parse_events(events)
    visits: list[StateVisit] = []
    open_visits: list[StateVisit] = []
    visit_of_event: dict[int, StateVisit] = {}
    iteration_of: dict[str, int] = {}
    iteration_of_event: dict[int, int] = {}
    status: ExecutionStatus = "RUNNING"
    stopped_at: datetime.datetime | None = None
    execution_error: StepError | None = None

    for event in history:
        kind = event.type
        if kind.endswith("StateEntered"):
            name = str(event.details().get("name", ""))
            state_type, within = index.get(name, (kind.removesuffix("StateEntered"), ()))
            entered = StateVisit(
                name=name,
                type=state_type,
                within=within,
                iteration=_iteration(
                    event, within, iteration_of, iteration_of_event, visit_of_event
                ),
                entered_at=event.timestamp,
            )
            visits.append(entered)
            open_visits.append(entered)
            visit_of_event[event.id] = entered
        elif kind.endswith("StateExited"):
            exited_name = str(event.details().get("name", ""))
            exited = _latest_named(open_visits, exited_name)
            if exited is not None:
                exited.exited_at = event.timestamp
                open_visits.remove(exited)
                visit_of_event[event.id] = exited
        elif kind == "MapIterationStarted":
            details = event.details()
            iteration_of[str(details.get("name", ""))] = int(details.get("index", 0))
            iteration_of_event[event.id] = int(details.get("index", 0))
        elif kind.startswith(("Map", "Parallel")):
            # Container events chain to inner states' events: attribute them by scope.
            container = _latest_open(open_visits, lambda v: v.type in _CONTAINER_TYPES)
            if container is not None and kind in _FAILURE_EVENTS:
                container.errors.append(_error_of(event))
                container.last_attempt_failed = True
        elif kind in _ATTEMPT_EVENTS or kind in _FAILURE_EVENTS or kind in _SUCCESS_EVENTS:
            visit = visit_of_event.get(event.previous_event_id) or _latest_open(
                open_visits, lambda v: v.type not in _CONTAINER_TYPES
            )
            if visit is None:
                continue
            visit_of_event[event.id] = visit
            if kind in _ATTEMPT_EVENTS:
                visit.attempts += 1
                visit.last_attempt_failed = False
            elif kind in _FAILURE_EVENTS:
                visit.errors.append(_error_of(event))
                visit.last_attempt_failed = True
            else:
                visit.last_attempt_failed = False
        elif kind in _END_STATUS:
            status = _END_STATUS[kind]
            stopped_at = event.timestamp
            if status != "SUCCEEDED":
                execution_error = _error_of(event)
        elif event.previous_event_id in visit_of_event:
            visit_of_event[event.id] = visit_of_event[event.previous_event_id]

    transitions = _transitions(visits)
    for visit in visits:
        visit.outcome = _outcome(visit, status)
    for transition in transitions:
        if transition.kind == "catch":
            for visit in visits:
                if visit.name == transition.source and visit.outcome == "caught":
                    visit.caught_to = transition.target
    failed_state, error = _failure(visits, status, execution_error)
    return ExecutionTrace(
        status=status,
        started_at=history[0].timestamp,
        stopped_at=stopped_at,
        visits=visits,
        transitions=transitions,
        failed_state=failed_state,
        error=error,
        execution_error=execution_error,
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
