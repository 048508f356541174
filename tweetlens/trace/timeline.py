"""An execution's trace as plain text lines for a terminal."""

from __future__ import annotations

import datetime

from tweetlens.trace.model import ExecutionTrace


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
