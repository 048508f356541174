"""Execution traces from GetExecutionHistory: the model, the timeline and the drawing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.local.conftest import load_data, load_history
from tweetlens.trace import (
    ExecutionTrace,
    StepError,
    TraceError,
    build_trace,
    render_html,
    render_svg,
    render_timeline,
)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    asl: dict[str, Any] = load_data("trace_classify_image.asl.json")
    return asl


def _trace(definition: dict[str, Any], name: str) -> ExecutionTrace:
    return build_trace(definition, load_history(name))


def _node_classes(svg: str) -> dict[str, set[str]]:
    """State name -> CSS classes of its node group in the SVG."""
    return {
        match["name"]: set(match["classes"].split())
        for match in re.finditer(
            r'<g id="state-[^"]+" class="(?P<classes>[^"]+)" '
            r'data-state="(?P<name>[^"]+)">',
            svg,
        )
    }


def _taken_edges(svg: str) -> set[tuple[str, str, str]]:
    edges = set()
    for match in re.finditer(
        r'<g class="(?P<classes>edge [^"]+)" data-source="(?P<source>[^"]+)" '
        r'data-target="(?P<target>[^"]+)">',
        svg,
    ):
        classes = match["classes"].split()
        if "taken" in classes:
            edges.add((match["source"], match["target"], classes[1]))
    return edges


def test_success_path_model(definition: dict[str, Any]) -> None:
    # GIVEN the history of a classified image / WHEN traced
    trace = _trace(definition, "history_success.json")

    # THEN every state on the happy path was entered once, in order, with no failure
    assert trace.status == "SUCCEEDED"
    assert [(v.name, v.iteration, v.outcome) for v in trace.visits] == [
        ("Claim Image", None, "succeeded"),
        ("Fetch Image", None, "succeeded"),
        ("Detect Labels", None, "succeeded"),
        ("Store Labels", None, "succeeded"),
        ("Store Label", 0, "succeeded"),
        ("Store Label", 1, "succeeded"),
        ("Classified", None, "succeeded"),
    ]
    assert trace.visits[4].within == ("Store Labels",)
    assert [(t.source, t.target, t.kind) for t in trace.transitions] == [
        ("Claim Image", "Fetch Image", "next"),
        ("Fetch Image", "Detect Labels", "next"),
        ("Detect Labels", "Store Labels", "next"),
        ("Store Labels", "Classified", "next"),
    ]
    assert trace.failed_state is None
    assert trace.error is None


def test_success_path_timeline(definition: dict[str, Any]) -> None:
    trace = _trace(definition, "history_success.json")
    assert render_timeline(trace) == [
        "Execution SUCCEEDED in 1.009s",
        "   +0.010s    0.035s  Claim Image                    succeeded",
        "   +0.046s    0.404s  Fetch Image                    succeeded",
        "   +0.451s    0.502s  Detect Labels                  succeeded",
        "   +0.954s    0.053s  Store Labels                   succeeded",
        "   +0.957s    0.022s    [0] Store Label              succeeded",
        "   +0.982s    0.022s    [1] Store Label              succeeded",
        "   +1.008s    0.000s  Classified                     succeeded",
    ]


def test_success_path_drawing(definition: dict[str, Any]) -> None:
    svg = render_svg(definition, _trace(definition, "history_success.json"))
    nodes = _node_classes(svg)
    assert {name for name, classes in nodes.items() if "taken" in classes} == {
        "Claim Image",
        "Fetch Image",
        "Detect Labels",
        "Store Labels",
        "Classified",
    }
    assert not any("failed" in classes for classes in nodes.values())
    assert _taken_edges(svg) == {
        ("Claim Image", "Fetch Image", "next"),
        ("Fetch Image", "Detect Labels", "next"),
        ("Detect Labels", "Store Labels", "next"),
        ("Store Labels", "Classified", "next"),
    }
    # The Map box lists its inner state with how many iterations ran it.
    assert "Store Label ✓ x2</text>" in svg


def test_retry_path_model_and_timeline(definition: dict[str, Any]) -> None:
    # GIVEN an image host that failed twice before answering
    trace = _trace(definition, "history_retry.json")

    # THEN Fetch Image took three attempts, kept both errors and still succeeded
    fetch = trace.visits[1]
    assert (fetch.name, fetch.attempts, fetch.retries, fetch.outcome) == (
        "Fetch Image",
        3,
        2,
        "succeeded",
    )
    assert fetch.errors == [
        StepError(error="ImageHostError", cause="'localhost:4443' answered 500"),
        StepError(error="ImageHostError", cause="'localhost:4443' answered 500"),
    ]
    assert trace.status == "SUCCEEDED"
    assert trace.failed_state is None
    assert render_timeline(trace) == [
        "Execution SUCCEEDED in 3.984s",
        "   +0.010s    0.035s  Claim Image                    succeeded",
        "   +0.046s    3.404s  Fetch Image                    succeeded  retries=2",
        "   +3.451s    0.502s  Detect Labels                  succeeded",
        "   +3.954s    0.028s  Store Labels                   succeeded",
        "   +3.957s    0.022s    [0] Store Label              succeeded",
        "   +3.983s    0.000s  Classified                     succeeded",
    ]


def test_retry_path_drawing_shows_the_retry_count(definition: dict[str, Any]) -> None:
    svg = render_svg(definition, _trace(definition, "history_retry.json"))
    nodes = _node_classes(svg)
    assert nodes["Fetch Image"] == {"state", "taken", "retried"}
    assert "Task · 2 retries</text>" in svg


def test_caught_failure_model(definition: dict[str, Any]) -> None:
    # GIVEN a deleted image: Fetch Image fails, the Catch dead-letters it, the Fail state ends
    trace = _trace(definition, "history_failure.json")

    # THEN the failing state is Fetch Image with its own error, and the catch edge was taken
    assert trace.status == "FAILED"
    assert trace.failed_state == "Fetch Image"
    assert trace.error == StepError(
        error="ImageNotFound", cause="'localhost:4443' answered 404: the image is gone"
    )
    assert trace.execution_error == StepError(
        error="ClassificationFailed", cause="see the workflow dead-letter queue"
    )
    assert [(v.name, v.outcome, v.caught_to) for v in trace.visits] == [
        ("Claim Image", "succeeded", None),
        ("Fetch Image", "caught", "Fetch Image Failed"),
        ("Fetch Image Failed", "succeeded", None),
        ("Record Failure", "succeeded", None),
        ("Failed", "failed", None),
    ]
    assert [(t.source, t.target, t.kind) for t in trace.transitions] == [
        ("Claim Image", "Fetch Image", "next"),
        ("Fetch Image", "Fetch Image Failed", "catch"),
        ("Fetch Image Failed", "Record Failure", "next"),
        ("Record Failure", "Failed", "next"),
    ]


def test_caught_failure_timeline(definition: dict[str, Any]) -> None:
    trace = _trace(definition, "history_failure.json")
    assert render_timeline(trace) == [
        "Execution FAILED in 0.248s; failed at 'Fetch Image': ImageNotFound",
        "   +0.010s    0.035s  Claim Image                    succeeded",
        "   +0.046s    0.154s  Fetch Image                    "
        "caught ImageNotFound -> Fetch Image Failed",
        "   +0.201s    0.001s  Fetch Image Failed             succeeded",
        "   +0.203s    0.043s  Record Failure                 succeeded",
        "   +0.247s         -  Failed                         failed ClassificationFailed",
    ]


def test_caught_failure_drawing_marks_the_failing_state_red(definition: dict[str, Any]) -> None:
    svg = render_svg(definition, _trace(definition, "history_failure.json"))
    nodes = _node_classes(svg)
    assert nodes["Fetch Image"] == {"state", "taken", "caught", "failed"}
    assert nodes["Failed"] == {"state", "taken", "failed"}
    assert nodes["Detect Labels"] == {"state"}
    assert nodes["Duplicate"] == {"state"}
    assert _taken_edges(svg) == {
        ("Claim Image", "Fetch Image", "next"),
        ("Fetch Image", "Fetch Image Failed", "catch"),
        ("Fetch Image Failed", "Record Failure", "next"),
        ("Record Failure", "Failed", "next"),
    }
    assert "Task · ImageNotFound</text>" in svg


def test_uncaught_failure_ends_in_the_failing_task(definition: dict[str, Any]) -> None:
    # GIVEN a Rekognition error on a state with no Catch
    trace = _trace(definition, "history_uncaught.json")

    # THEN the task never exited and is the failing state
    assert trace.failed_state == "Detect Labels"
    assert trace.visits[-1].outcome == "failed"
    assert trace.visits[-1].exited_at is None
    assert render_timeline(trace)[0] == (
        "Execution FAILED in 0.533s; failed at 'Detect Labels': "
        "Rekognition.InvalidImageFormatException"
    )
    assert render_timeline(trace)[-1] == (
        "   +0.451s         -  Detect Labels                  "
        "failed Rekognition.InvalidImageFormatException"
    )
    assert _node_classes(render_svg(definition, trace))["Detect Labels"] == {
        "state",
        "taken",
        "failed",
    }


def test_running_execution_has_open_states(definition: dict[str, Any]) -> None:
    # GIVEN the first events of an execution still fetching its image
    history = load_history("history_success.json")[:9]

    # WHEN traced / THEN it is running, the current state is open and nothing failed
    trace = build_trace(definition, history)
    assert trace.status == "RUNNING"
    assert trace.stopped_at is None
    assert [(v.name, v.outcome) for v in trace.visits] == [
        ("Claim Image", "succeeded"),
        ("Fetch Image", "running"),
    ]
    assert render_timeline(trace)[0] == "Execution RUNNING in -"


def test_html_is_self_contained(definition: dict[str, Any]) -> None:
    # GIVEN a failure trace / WHEN rendered as a page
    page = render_html(definition, _trace(definition, "history_failure.json"), title="x <y>")

    # THEN it embeds the SVG and the timeline, escapes text and loads nothing from outside
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>x &lt;y&gt;</title>" in page
    assert "<svg " in page
    assert "caught ImageNotFound -&gt; Fetch Image Failed" in page
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_history_must_start_with_execution_started(definition: dict[str, Any]) -> None:
    history = load_history("history_success.json")[1:]
    with pytest.raises(TraceError, match="must start with an ExecutionStarted"):
        build_trace(definition, history)


def test_definition_without_states_is_refused() -> None:
    # GIVEN a definition with no States / WHEN a history is traced against it / THEN refused
    with pytest.raises(TraceError, match="the definition has no States"):
        build_trace({"StartAt": "A"}, load_history("history_success.json"))
