"""The state machine drawn top-down (inline SVG, no scripts, no external assets), with the
path an execution took highlighted, retry counts shown and the failing state in red."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tweetlens.trace.definition import (
    Edge,
    edges_of,
    inner_definitions,
    state_index,
    states_of,
)
from tweetlens.trace.model import ExecutionTrace, TraceError
from tweetlens.trace.timeline import render_timeline

_NODE_W: Final = 200
_NODE_H: Final = 46
_INNER_LINE_H: Final = 16
_GAP_X: Final = 40
_GAP_Y: Final = 56
_MARGIN: Final = 30


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "state"


def _ranks(definition: Mapping[str, Any], edges: list[Edge]) -> dict[str, int]:
    """Top-down layer of each top-level state: longest path from StartAt, back edges ignored."""
    states = list(states_of(definition))
    start = str(definition.get("StartAt", ""))
    if start not in states_of(definition):
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
    for inner in inner_definitions(state):
        names.extend(state_index(inner))
    return tuple(names)


def _layout(definition: Mapping[str, Any], edges: list[Edge]) -> dict[str, _Placed]:
    ranks = _ranks(definition, edges)
    states = states_of(definition)
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


def _edge_svg(edge: Edge, placed: Mapping[str, _Placed], taken: set[tuple[str, str, str]]) -> str:
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
    edges = edges_of(definition)
    placed = _layout(definition, edges)
    states = states_of(definition)
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
