"""Reading an ASL definition: its states (nested ones too) and the transitions it allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from tweetlens.trace.model import TraceError

EdgeKind = Literal["next", "default", "choice", "catch"]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str


LABEL_MAX_CHARS: Final = 30


def short_label(label: str) -> str:
    return label if len(label) <= LABEL_MAX_CHARS else label[: LABEL_MAX_CHARS - 1] + "…"


def states_of(definition: Mapping[str, Any]) -> Mapping[str, Any]:
    states = definition.get("States")
    if not isinstance(states, Mapping) or not states:
        raise TraceError("the definition has no States")
    return states


def inner_definitions(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The nested state machines of a Map (ItemProcessor or legacy Iterator) or Parallel."""
    if state.get("Type") == "Map":
        inner = state.get("ItemProcessor") or state.get("Iterator")
        return [inner] if isinstance(inner, Mapping) else []
    if state.get("Type") == "Parallel":
        return [branch for branch in state.get("Branches", []) if isinstance(branch, Mapping)]
    return []


def state_index(
    definition: Mapping[str, Any], within: tuple[str, ...] = ()
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every state name, nested ones included, with its type and enclosing containers."""
    index: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, state in states_of(definition).items():
        index[name] = (str(state.get("Type", "")), within)
        for inner in inner_definitions(state):
            index.update(state_index(inner, (*within, name)))
    return index


def edges_of(definition: Mapping[str, Any]) -> list[Edge]:
    """The top-level transitions a definition allows, in definition order."""
    edges: list[Edge] = []
    for name, state in states_of(definition).items():
        if "Next" in state:
            edges.append(Edge(name, state["Next"], "next", ""))
        for number, choice in enumerate(state.get("Choices", []), start=1):
            if "Next" in choice:
                edges.append(Edge(name, choice["Next"], "choice", f"choice {number}"))
        if "Default" in state:
            edges.append(Edge(name, state["Default"], "default", "default"))
        for catcher in state.get("Catch", []):
            if "Next" in catcher:
                label = short_label("catch " + ", ".join(catcher.get("ErrorEquals", [])))
                edges.append(Edge(name, catcher["Next"], "catch", label))
    return edges
