"""Execution traces: which path a Step Functions execution took, drawn and as a timeline.

``replay.build_trace`` reads an ASL definition and the events of ``GetExecutionHistory`` and
builds the states entered in order, with start, end, duration, attempts, errors and the Catch
transitions taken (``model``). ``drawing.render_html`` draws the state machine top-down as a
self-contained HTML page with the path taken highlighted; ``timeline.render_timeline`` gives
the same facts as plain text lines for a terminal. ``lookup`` finds an execution of a
deployed stack (by ARN or name) and draws it.
"""

from tweetlens.trace.drawing import render_html, render_svg
from tweetlens.trace.lookup import (
    DrawnTrace,
    draw,
    draw_express,
    execution_history,
    resolve_execution_arn,
    state_machine_arns,
    trace_execution,
)
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
from tweetlens.trace.replay import build_trace
from tweetlens.trace.timeline import render_timeline

__all__ = [
    "DrawnTrace",
    "ExecutionStatus",
    "ExecutionTrace",
    "HistoryEvent",
    "Outcome",
    "StateVisit",
    "StepError",
    "TraceError",
    "Transition",
    "build_trace",
    "draw",
    "draw_express",
    "execution_history",
    "render_html",
    "render_svg",
    "render_timeline",
    "resolve_execution_arn",
    "state_machine_arns",
    "trace_execution",
]
