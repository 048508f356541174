"""Execution traces: which path a Step Functions execution took, drawn and as a timeline.

``build_trace`` reads an ASL definition and the events of ``GetExecutionHistory`` (boto3's
shape: ``timestamp``, ``type``, ``id``, ``previousEventId`` and one ``<type>EventDetails``
member) and builds the states entered in order, with start, end, duration, attempts, errors
and the Catch transitions taken. ``render_html`` draws the state machine top-down as a
self-contained HTML page (inline SVG, no scripts, no external assets) with the path taken
highlighted, retry counts shown and the failing state in red; ``render_timeline`` gives the
same facts as plain text lines for a terminal.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["succeeded", "caught", "failed", "running", "timed_out", "aborted"]
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
EdgeKind = Literal["next", "default", "choice", "catch"]

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

    def visited(self) -> set[str]:
        return {visit.name for visit in self.visits}


# -- definition ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str


_LABEL_MAX_CHARS: Final = 30


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_MAX_CHARS else label[: _LABEL_MAX_CHARS - 1] + "…"


def _states(definition: Mapping[str, Any]) -> Mapping[str, Any]:
    states = definition.get("States")
    if not isinstance(states, Mapping) or not states:
        raise TraceError("the definition has no States")
    return states


def _inner_definitions(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The nested state machines of a Map (ItemProcessor or legacy Iterator) or Parallel."""
    if state.get("Type") == "Map":
        inner = state.get("ItemProcessor") or state.get("Iterator")
        return [inner] if isinstance(inner, Mapping) else []
    if state.get("Type") == "Parallel":
        return [branch for branch in state.get("Branches", []) if isinstance(branch, Mapping)]
    return []


def _state_index(
    definition: Mapping[str, Any], within: tuple[str, ...] = ()
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every state name, nested ones included, with its type and enclosing containers."""
    index: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, state in _states(definition).items():
        index[name] = (str(state.get("Type", "")), within)
        for inner in _inner_definitions(state):
            index.update(_state_index(inner, (*within, name)))
    return index


def _edges(definition: Mapping[str, Any]) -> list[_Edge]:
    """The top-level transitions a definition allows, in definition order."""
    edges: list[_Edge] = []
    for name, state in _states(definition).items():
        if "Next" in state:
            edges.append(_Edge(name, state["Next"], "next", ""))
        for number, choice in enumerate(state.get("Choices", []), start=1):
            if "Next" in choice:
                edges.append(_Edge(name, choice["Next"], "choice", f"choice {number}"))
        if "Default" in state:
            edges.append(_Edge(name, state["Default"], "default", "default"))
        for catcher in state.get("Catch", []):
            if "Next" in catcher:
                label = _short("catch " + ", ".join(catcher.get("ErrorEquals", [])))
                edges.append(_Edge(name, catcher["Next"], "catch", label))
    return edges


# -- history -------------------------------------------------------------------------


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
    index = _state_index(definition)
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


# -- timeline ------------------------------------------------------------------------


def _seconds(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds():.3f}s"


def render_timeline(trace: ExecutionTrace) -> list[str]:
    """One line per state visit: offset from start, duration, state, outcome, retries."""
    total = "-" if trace.stopped_at is None else _seconds(trace.stopped_at - trace.started_at)
    header = f"Execution {trace.status} in {total}"
    if trace.failed_state is not None and trace.error is not None:
        header += f"; failed at {trace.failed_state!r}: {trace.error.error}"
    lines = [header]
    for visit in trace.visits:
        offset = "+" + _seconds(visit.entered_at - trace.started_at)
        duration = "-" if visit.duration is None else _seconds(visit.duration)
        indent = "  " * len(visit.within)
        label = visit.name if visit.iteration is None else f"[{visit.iteration}] {visit.name}"
        outcome: str = visit.outcome
        if visit.outcome == "caught" and visit.errors:
            outcome = f"caught {visit.errors[-1].error} -> {visit.caught_to}"
        elif visit.outcome == "failed" and visit.errors:
            outcome = f"failed {visit.errors[-1].error}"
        elif visit.outcome == "failed" and trace.execution_error is not None:
            outcome = f"failed {trace.execution_error.error}"
        retries = f"  retries={visit.retries}" if visit.retries else ""
        lines.append(f"{offset:>10} {duration:>9}  {indent + label:<30} {outcome}{retries}")
    return lines


# -- drawing -------------------------------------------------------------------------

_NODE_W: Final = 200
_NODE_H: Final = 46
_INNER_LINE_H: Final = 16
_GAP_X: Final = 40
_GAP_Y: Final = 56
_MARGIN: Final = 30


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "state"


def _ranks(definition: Mapping[str, Any], edges: list[_Edge]) -> dict[str, int]:
    """Top-down layer of each top-level state: longest path from StartAt, back edges ignored."""
    states = list(_states(definition))
    start = str(definition.get("StartAt", ""))
    if start not in _states(definition):
        raise TraceError(f"StartAt {start!r} is not a state")
    outgoing: dict[str, list[str]] = {name: [] for name in states}
    for edge in edges:
        if edge.target in outgoing and edge.target not in outgoing[edge.source]:
            outgoing[edge.source].append(edge.target)
    # Depth-first order from StartAt, then any unreachable states, finds the back edges.
    order: list[str] = []
    seen: set[str] = set()
    on_path: set[str] = set()
    back: set[tuple[str, str]] = set()

    def visit(name: str) -> None:
        seen.add(name)
        on_path.add(name)
        for target in outgoing[name]:
            if target in on_path:
                back.add((name, target))
            elif target not in seen:
                visit(target)
        on_path.discard(name)
        order.append(name)

    for name in [start, *states]:
        if name not in seen:
            visit(name)
    rank = dict.fromkeys(states, 0)
    for name in reversed(order):
        for target in outgoing[name]:
            if (name, target) not in back:
                rank[target] = max(rank[target], rank[name] + 1)
    return rank


@dataclass(frozen=True)
class _Placed:
    name: str
    x: int
    y: int
    height: int
    inner: tuple[str, ...]


def _inner_names(state: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for inner in _inner_definitions(state):
        names.extend(_state_index(inner))
    return tuple(names)


def _layout(definition: Mapping[str, Any], edges: list[_Edge]) -> dict[str, _Placed]:
    ranks = _ranks(definition, edges)
    states = _states(definition)
    rows: dict[int, list[str]] = {}
    for name in states:
        rows.setdefault(ranks[name], []).append(name)
    widest = max(len(row) for row in rows.values())
    width = widest * _NODE_W + (widest - 1) * _GAP_X
    placed: dict[str, _Placed] = {}
    y = _MARGIN
    for rank in sorted(rows):
        row = rows[rank]
        row_w = len(row) * _NODE_W + (len(row) - 1) * _GAP_X
        x = _MARGIN + (width - row_w) // 2
        row_h = _NODE_H
        for name in row:
            inner = _inner_names(states[name])
            height = _NODE_H + len(inner) * _INNER_LINE_H + (8 if inner else 0)
            placed[name] = _Placed(name, x, y, height, inner)
            row_h = max(row_h, height)
            x += _NODE_W + _GAP_X
        y += row_h + _GAP_Y
    return placed


def _node_classes(name: str, trace: ExecutionTrace) -> list[str]:
    visits = [visit for visit in trace.visits if visit.name == name]
    classes = ["state"]
    if visits:
        classes.append("taken")
    if any(visit.outcome == "caught" for visit in visits):
        classes.append("caught")
    if name == trace.failed_state or any(visit.outcome == "failed" for visit in visits):
        classes.append("failed")
    if any(visit.retries for visit in visits):
        classes.append("retried")
    return classes


def _text(x: float, y: float, content: str, css_class: str) -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" class="{css_class}">{html.escape(content)}</text>'


def _node_svg(placed: _Placed, state_type: str, trace: ExecutionTrace) -> Iterator[str]:
    visits = [visit for visit in trace.visits if visit.name == placed.name]
    classes = _node_classes(placed.name, trace)
    yield (
        f'<g id="state-{_slug(placed.name)}" class="{" ".join(classes)}" '
        f'data-state="{html.escape(placed.name)}">'
    )
    yield (
        f'<rect x="{placed.x}" y="{placed.y}" width="{_NODE_W}" height="{placed.height}" '
        f'rx="{14 if state_type in {"Succeed", "Fail"} else 6}"/>'
    )
    center = placed.x + _NODE_W / 2
    yield _text(center, placed.y + 19, placed.name, "name")
    detail = state_type
    retries = sum(visit.retries for visit in visits)
    if retries:
        detail += f" · {retries} {'retry' if retries == 1 else 'retries'}"
    if placed.name == trace.failed_state and trace.error is not None:
        detail += f" · {trace.error.error}"
    yield _text(center, placed.y + 36, detail, "detail")
    for number, inner in enumerate(placed.inner):
        inner_visits = [v for v in trace.visits if v.name == inner and placed.name in v.within]
        mark = ""
        if inner_visits:
            mark = f" ✓ x{len(inner_visits)}"
            if any(v.outcome in {"failed", "caught"} for v in inner_visits):
                mark = f" ✗ x{len(inner_visits)}"
        yield _text(center, placed.y + _NODE_H + 4 + number * _INNER_LINE_H, inner + mark, "inner")
    yield "</g>"


def _edge_svg(edge: _Edge, placed: Mapping[str, _Placed], taken: set[tuple[str, str, str]]) -> str:
    source, target = placed[edge.source], placed[edge.target]
    x1 = source.x + _NODE_W / 2
    y1 = source.y + source.height
    x2 = target.x + _NODE_W / 2
    y2 = target.y
    taken_kind = "catch" if edge.kind == "catch" else "next"
    classes = ["edge", edge.kind]
    if (edge.source, edge.target, taken_kind) in taken:
        classes.append("taken")
    if y2 <= y1:
        # A loop back up the graph: go round the right-hand side.
        side = max(source.x, target.x) + _NODE_W + _GAP_X / 2
        path = (
            f"M{source.x + _NODE_W:.0f},{source.y + source.height / 2:.0f} "
            f"C{side:.0f},{y1:.0f} {side:.0f},{y2:.0f} {target.x + _NODE_W:.0f},"
            f"{target.y + target.height / 2:.0f}"
        )
    else:
        mid = (y1 + y2) / 2
        path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
    label = ""
    if edge.label:
        # Near the source end, where edges leaving one state have not converged yet.
        label = _text(x1 + (x2 - x1) * 0.3 + 6, y1 + (y2 - y1) * 0.3, edge.label, "edge-label")
    return (
        f'<g class="{" ".join(classes)}" data-source="{html.escape(edge.source)}" '
        f'data-target="{html.escape(edge.target)}"><path d="{path}" marker-end="url(#arrow)"/>'
        f"{label}</g>"
    )


_STYLE: Final = """
.state rect { fill: #ffffff; stroke: #9aa0a6; stroke-width: 1.5; }
.state text { fill: #80868b; }
.state.taken rect { fill: #e6f4ea; stroke: #188038; stroke-width: 2.5; }
.state.taken text { fill: #202124; }
.state.caught rect { fill: #fef7e0; stroke: #e37400; }
.state.failed rect { fill: #fce8e6; stroke: #d93025; stroke-width: 3; }
.state.failed .detail { fill: #d93025; font-weight: bold; }
.name { font: bold 13px sans-serif; text-anchor: middle; }
.detail { font: 11px sans-serif; text-anchor: middle; }
.inner { font: 11px monospace; text-anchor: middle; }
.edge path { fill: none; stroke: #bdc1c6; stroke-width: 1.2; }
.edge.catch path { stroke-dasharray: 5 4; }
.edge.taken path { stroke: #188038; stroke-width: 2.5; }
.edge.catch.taken path { stroke: #e37400; }
.edge-label { font: 10px sans-serif; fill: #5f6368; }
""".strip()


def render_svg(definition: Mapping[str, Any], trace: ExecutionTrace) -> str:
    """The state machine drawn top-down with the path of ``trace`` highlighted."""
    edges = _edges(definition)
    placed = _layout(definition, edges)
    states = _states(definition)
    taken: set[tuple[str, str, str]] = {(t.source, t.target, t.kind) for t in trace.transitions}
    # Room on the right for loop-back edges and the labels of the rightmost edges.
    width = max(p.x + _NODE_W for p in placed.values()) + _MARGIN + 4 * _GAP_X
    height = max(p.y + p.height for p in placed.values()) + _MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<style>{_STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" '
        'fill="#5f6368"/></marker></defs>',
    ]
    parts.extend(_edge_svg(edge, placed, taken) for edge in edges if edge.target in placed)
    for name, node in placed.items():
        parts.extend(_node_svg(node, str(states[name].get("Type", "")), trace))
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(
    definition: Mapping[str, Any], trace: ExecutionTrace, *, title: str = "Execution trace"
) -> str:
    """A self-contained page: the drawn graph and the timeline. No scripts, no downloads."""
    timeline = html.escape("\n".join(render_timeline(trace)))
    error = ""
    if trace.error is not None:
        error = (
            f'<p class="error"><b>{html.escape(trace.error.error)}</b>: '
            f"{html.escape(trace.error.cause)}</p>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px;color:#202124}"
        "pre{background:#f1f3f4;padding:12px;overflow:auto}.error{color:#d93025}</style>"
        "</head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Status: <b>{trace.status}</b></p>{error}"
        f"{render_svg(definition, trace)}"
        f"<h2>Timeline</h2><pre>{timeline}</pre>"
        "</body></html>\n"
    )
