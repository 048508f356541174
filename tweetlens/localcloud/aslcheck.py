"""The checks Step Functions makes on a definition at CreateStateMachine, which moto skips.

AWS refuses a definition that is not JSON or whose transitions lead nowhere
("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: …'"); moto stores it, prints
ANTLR's complaints, and fails or hangs only when an execution reaches the fault. These are the
structural checks (JSON, StartAt, state types, every transition's target, which states may
have Next/End/Choices, every state reachable, a terminal state), not a full validator: the
local cloud's job is to refuse what AWS would refuse before anything runs.

A definition file (``DefinitionUri``, CloudFormation's ``DefinitionS3Location``) may be JSON
or YAML, as CloudFormation reads it; a text that opens with ``{`` is read as JSON only, so a
broken JSON file is named as such rather than read as a YAML flow mapping.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from tweetlens.localcloud.errors import DeployError

STATE_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
# States that end the execution (or branch) by their type; they may have neither Next nor End.
_ENDING_TYPES = frozenset({"Succeed", "Fail"})
_NO_NEXT_OR_END = frozenset({"Choice", "Succeed", "Fail"})
_SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")
# Fields AWS refuses unless they are JSON integers: "Seconds": "2" (what SAM makes of an
# inline `Seconds: !Ref P`, its substitution written inside quotes) is refused at create with
# "Expected value of type Integer". Only the two whose refusal is on record; other integer
# fields (MaxConcurrency, HeartbeatSeconds) are left unchecked rather than guessed.
_INTEGER_FIELDS = ("Seconds", "TimeoutSeconds")
# Under JSONata a field may instead hold an expression, "{% ... %}", evaluated at run time.
_JSONATA_EXPRESSION = re.compile(r"\{%.*%\}", re.DOTALL)


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


class _Checker:
    """One definition's checks; ``pending`` names substitutions whose values are not known yet.

    A field that still holds ``${Name}`` of a pending substitution could become any state name
    or ``true``: its own checks are left to the check after the real substitution, and so is
    the reachability walk of the machine (or branch) it is in, which could lead anywhere.
    """

    def __init__(self, logical_id: str, pending: frozenset[str]) -> None:
        self.logical_id = logical_id
        self.pending = pending

    def refuse(self, problem: str) -> InvalidDefinitionError:
        return InvalidDefinitionError(self.logical_id, problem)

    def is_pending(self, value: Any) -> bool:
        return isinstance(value, str) and any(
            name in self.pending for name in _SUBSTITUTION.findall(value)
        )

    def check(self, machine: Any) -> None:
        # Every state's own fields first, in all branches, then the walks: a transition to
        # nowhere inside a branch is named before the state it leaves unreached outside it.
        walks: list[tuple[str, dict[str, Any], str]] = []
        self.machine(machine, "", walks, "JSONPath")
        for start, states, where in walks:
            self.walk(start, states, where)

    def machine(
        self,
        machine: Any,
        where: str,
        walks: list[tuple[str, dict[str, Any], str]],
        language: str,
    ) -> None:
        """``language`` is the QueryLanguage the machine inherits (the top level's, or the
        Map or Parallel state's that holds this branch); its own field overrides it."""
        if not isinstance(machine, dict):
            raise self.refuse(f"{where or '/'} must be a JSON object")
        language = machine.get("QueryLanguage", language)
        states = machine.get("States")
        if not isinstance(states, dict) or not states:
            raise self.refuse(f"{where}/States must be a non-empty object")
        start = machine.get("StartAt")
        unknown_flow = self.is_pending(start)
        if not unknown_flow and start not in states:
            raise self.refuse(
                f"MISSING_TRANSITION_TARGET: StartAt {start!r} is no state at {where}"
            )
        for name, state in states.items():
            unknown_flow |= self.state(name, state, states, where, language)
        if not unknown_flow:
            walks.append((str(start), states, where))
        for name, state in states.items():
            at = f"{where}/States/{name}"
            own = state.get("QueryLanguage", language)
            for index, branch in enumerate(state.get("Branches") or []):
                self.machine(branch, f"{at}/Branches/{index}", walks, own)
            for key in ("Iterator", "ItemProcessor"):
                if key in state:
                    self.machine(state[key], f"{at}/{key}", walks, own)

    def walk(self, start: str, states: Mapping[str, Any], where: str) -> None:
        """A terminal state, and every state reachable from StartAt (of one machine or branch)."""
        if not any(state["Type"] in _ENDING_TYPES or "End" in state for state in states.values()):
            # AWS walks no further then: every state is "unreachable" from an endless loop.
            raise self.refuse(
                f"MISSING_END_STATE: Workflow has no terminal state at {where or '/'}"
            )
        reached = {start}
        queue = [start]
        while queue:
            name = queue.pop()
            for _, target in _transitions(name, states[name]):
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        for name in states:
            if name not in reached:
                raise self.refuse(
                    f'MISSING_TRANSITION_TARGET: State "{name}" is not reachable. '
                    f"at {where}/States/{name}"
                )

    def state(
        self, name: str, state: Any, states: Mapping[str, Any], where: str, language: str
    ) -> bool:
        """Check one state's own fields; True when a transition of it is still pending."""
        at = f"{where}/States/{name}"
        if not isinstance(state, dict):
            raise self.refuse(f"{at} must be a JSON object")
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            raise self.refuse(f"{at}/Type {kind!r} is not a state type")
        if kind in _NO_NEXT_OR_END:
            for field in ("Next", "End"):
                if field in state:
                    raise self.refuse(
                        f"SCHEMA_VALIDATION_FAILED: Field {field} is not supported by a "
                        f"{kind} state at {at}"
                    )
        if kind == "Choice" and not (isinstance(state.get("Choices"), list) and state["Choices"]):
            raise self.refuse(
                f"SCHEMA_VALIDATION_FAILED: A Choice state needs a non-empty Choices at {at}"
            )
        jsonata = state.get("QueryLanguage", language) == "JSONata"
        for field in _INTEGER_FIELDS:
            value = state.get(field)
            if (
                field in state
                and not self.is_pending(value)
                and not (
                    jsonata and isinstance(value, str) and _JSONATA_EXPRESSION.fullmatch(value)
                )
                and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise self.refuse(
                    f"SCHEMA_VALIDATION_FAILED: Expected value of type Integer at {at}/{field}"
                )
        if "Next" in state and "End" in state:
            raise self.refuse(
                f"SCHEMA_VALIDATION_FAILED: Next and End cannot both be present at {at}"
            )
        pending = False
        for transition, target in _transitions(name, state):
            if self.is_pending(target):
                pending = True
            elif not isinstance(target, str) or target not in states:
                raise self.refuse(
                    f"MISSING_TRANSITION_TARGET: Missing target {target!r} at {where}{transition}"
                )
        end = state.get("End")
        if kind not in _NO_NEXT_OR_END and "Next" not in state and end is not True:
            if self.is_pending(end):
                return True
            raise self.refuse(f"MISSING_TRANSITION_TARGET: {at} has neither Next nor End: true")
        return pending


def _quote_pending(text: str, pending: frozenset[str]) -> str:
    """``${Name}`` of a pending substitution written outside a JSON string, quoted.

    ``"End": ${Flag}`` is JSON once Flag is known; until then it is read as the text
    ``"${Flag}"``, which the checks recognise as pending. Inside a string it is left as is.
    """
    out: list[str] = []
    in_string = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                out.append(text[index : index + 2])
                index += 2
                continue
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char == "$" and (match := _SUBSTITUTION.match(text, index)) and match[1] in pending:
            out.append(json.dumps(match[0]))
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def load_definition(logical_id: str, text: str) -> Any:
    """The definition as data: JSON, or YAML for a text that does not open with ``{``."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidDefinitionError(logical_id, f"the definition is not JSON: {exc}") from exc
    import yaml  # noqa: PLC0415 - PyYAML is needed only for a YAML definition file

    try:
        data = yaml.load(text, Loader=_definition_loader())  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise InvalidDefinitionError(
            logical_id, f"the definition is neither JSON nor YAML: {exc}"
        ) from exc
    try:
        # What JSON cannot hold (an explicit !!binary or !!set) is named, not a TypeError.
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidDefinitionError(
            logical_id, f"the YAML definition holds a value JSON cannot: {exc}"
        ) from exc
    return data


@functools.cache
def _definition_loader() -> type[Any]:
    """PyYAML's safe loader without its date resolver.

    A definition is JSON once read: ``Result: {released: 2024-01-01}`` is the text
    "2024-01-01" there (a plain YAML date would be a ``datetime.date``, which no JSON holds).
    """
    import yaml  # noqa: PLC0415 - PyYAML is needed only for a YAML definition file

    class DefinitionLoader(yaml.SafeLoader):
        pass

    DefinitionLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return DefinitionLoader


def definition_json(logical_id: str, text: str) -> str:
    """``text`` as the JSON Step Functions takes (a YAML definition file converted)."""
    if text.lstrip().startswith("{"):
        return text
    return json.dumps(load_definition(logical_id, text))


def check_definition(logical_id: str, text: str, pending: frozenset[str] = frozenset()) -> None:
    """Refuse ``text`` as Step Functions would refuse it at create, naming ``logical_id``.

    ``pending`` are the substitutions not yet applied (their values are known only once the
    stack exists): fields holding them are checked again after the real substitution.
    """
    if pending and text.lstrip().startswith("{"):
        text = _quote_pending(text, pending)
    _Checker(logical_id, pending).check(load_definition(logical_id, text))
