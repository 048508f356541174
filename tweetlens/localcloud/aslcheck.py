"""The checks Step Functions makes on a definition at CreateStateMachine, which moto skips.

AWS refuses a definition that is not JSON or whose transitions lead nowhere
("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: …'"); moto stores it, prints
ANTLR's complaints, and fails or hangs only when an execution reaches the fault. These are the
structural checks (JSON, StartAt, state types, every transition's target), not a full
validator: the local cloud's job is to refuse what AWS would refuse before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from tweetlens.localcloud.errors import DeployError

STATE_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})


class InvalidDefinitionError(DeployError):
    """A state machine definition Step Functions would refuse, naming the machine and where."""

    def __init__(self, logical_id: str, problem: str) -> None:
        super().__init__(f"{logical_id}: Invalid State Machine Definition: {problem}")
        self.logical_id = logical_id
        self.problem = problem


def _transitions(name: str, state: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, target) of each transition a state declares."""
    if "Next" in state:
        yield f"/States/{name}/Next", state["Next"]
    if "Default" in state:
        yield f"/States/{name}/Default", state["Default"]
    for index, choice in enumerate(state.get("Choices") or []):
        if isinstance(choice, dict) and "Next" in choice:
            yield f"/States/{name}/Choices/{index}/Next", choice["Next"]
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and "Next" in catcher:
            yield f"/States/{name}/Catch/{index}/Next", catcher["Next"]


def _check_machine(logical_id: str, machine: Any, where: str) -> None:
    if not isinstance(machine, dict):
        raise InvalidDefinitionError(logical_id, f"{where or '/'} must be a JSON object")
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        raise InvalidDefinitionError(logical_id, f"{where}/States must be a non-empty object")
    start = machine.get("StartAt")
    if start not in states:
        raise InvalidDefinitionError(
            logical_id, f"MISSING_TRANSITION_TARGET: StartAt {start!r} is no state at {where}"
        )
    for name, state in states.items():
        at = f"{where}/States/{name}"
        if not isinstance(state, dict):
            raise InvalidDefinitionError(logical_id, f"{at} must be a JSON object")
        if state.get("Type") not in STATE_TYPES:
            raise InvalidDefinitionError(
                logical_id, f"{at}/Type {state.get('Type')!r} is not a state type"
            )
        for transition, target in _transitions(name, state):
            if not isinstance(target, str) or target not in states:
                raise InvalidDefinitionError(
                    logical_id,
                    f"MISSING_TRANSITION_TARGET: Missing target {target!r} at {where}{transition}",
                )
        terminal = state["Type"] in ("Choice", "Succeed", "Fail")
        if not terminal and "Next" not in state and state.get("End") is not True:
            raise InvalidDefinitionError(
                logical_id, f"MISSING_TRANSITION_TARGET: {at} has neither Next nor End: true"
            )
        for index, branch in enumerate(state.get("Branches") or []):
            _check_machine(logical_id, branch, f"{at}/Branches/{index}")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                _check_machine(logical_id, state[key], f"{at}/{key}")


def check_definition(logical_id: str, text: str) -> None:
    """Refuse ``text`` as Step Functions would refuse it at create, naming ``logical_id``."""
    try:
        machine = json.loads(text)
    except ValueError as exc:
        raise InvalidDefinitionError(logical_id, f"the definition is not JSON: {exc}") from exc
    _check_machine(logical_id, machine, "")
