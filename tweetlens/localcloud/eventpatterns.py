"""EventBridge event patterns: validation when a rule is deployed, matching when an event arrives.

moto ships a matcher (``moto.events.models.EventPattern``) but it differs from EventBridge where
tests notice: it compares numbers by value (``300`` equals ``300.0``, ``true`` equals ``1``),
lets booleans pass ``numeric`` filters, does not look inside arrays of objects, and matches
every event for an operator it does not know (a typo such as ``"prefx"``). So the local cloud
has its own, with EventBridge's documented semantics:

* A pattern is an object whose leaves are non-empty arrays; a field matches when any array
  element matches any of the event's values at that path. Arrays in the event are flattened:
  an array of objects contributes each object's fields at the same path.
* Literal strings match character by character; numbers match by their JSON representation
  (``300`` and ``300.0`` differ); ``true``/``false``/``null`` match only themselves (``null``
  is not ``""``).
* Operators: ``prefix``, ``suffix`` (each also ``{"equals-ignore-case": …}``),
  ``equals-ignore-case``, ``anything-but`` (a value, a list of values, or ``prefix``/
  ``suffix``/``equals-ignore-case``/``wildcard``), ``numeric`` (one or two comparisons),
  ``exists`` (leaf fields only), ``cidr``, ``wildcard``, and ``$or`` between sub-patterns.
  A missing field matches nothing but ``{"exists": false}``.

Anything else is refused by ``validate_pattern`` with ``EventPatternError``, so a rule the
local cloud cannot evaluate fails the deploy instead of matching wrongly.
"""

from __future__ import annotations

import ipaddress
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tweetlens.localcloud.errors import LocalCloudError

Path = tuple[str, ...]
Leaves = dict[Path, list[Any]]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_OPERATORS = (*_STRING_OPERATORS, "anything-but", "numeric", "exists", "cidr")


class EventPatternError(LocalCloudError):
    """An event pattern uses something EventBridge refuses or the local cloud cannot evaluate."""


# -- validation ------------------------------------------------------------------------------


def validate_pattern(pattern: Any, *, opaque: Callable[[Any], bool] = lambda _: False) -> None:
    """Raise ``EventPatternError`` unless ``pattern`` is a pattern this module evaluates.

    ``opaque`` marks values that are not known yet (CloudFormation intrinsics before the stack
    exists): they are accepted wherever a literal value may stand.
    """
    if not isinstance(pattern, Mapping) or not pattern:
        raise EventPatternError("an event pattern must be a non-empty JSON object")
    _validate_node(pattern, (), opaque)


def _validate_node(node: Mapping[str, Any], path: Path, opaque: Callable[[Any], bool]) -> None:
    for key, value in node.items():
        here = (*path, key)
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise EventPatternError(f"{_dotted(here)}: $or needs a list of 2 or more patterns")
            for branch in value:
                if not isinstance(branch, Mapping) or not branch:
                    raise EventPatternError(f"{_dotted(here)}: each $or branch must be an object")
                _validate_node(branch, path, opaque)
        elif isinstance(value, Mapping):
            _validate_node(value, here, opaque)
        elif isinstance(value, list):
            if not value:
                raise EventPatternError(f"{_dotted(here)}: empty arrays are not allowed")
            for item in value:
                _validate_match(item, here, opaque)
        else:
            raise EventPatternError(f"{_dotted(here)}: must be an object or an array")


def _validate_match(item: Any, path: Path, opaque: Callable[[Any], bool]) -> None:
    if _is_literal(item) or opaque(item):
        return
    if not isinstance(item, Mapping) or len(item) != 1:
        raise EventPatternError(f"{_dotted(path)}: {item!r} is neither a value nor one operator")
    ((name, argument),) = item.items()
    if name not in _OPERATORS:
        raise EventPatternError(f"{_dotted(path)}: operator {name!r} is not supported")
    checks: dict[str, Callable[[Any], bool]] = {
        "prefix": _is_string_or_ignore_case,
        "suffix": _is_string_or_ignore_case,
        "equals-ignore-case": _is_string_or_strings,
        "wildcard": _is_string_or_strings,
        "anything-but": _is_anything_but,
        "numeric": _is_numeric,
        "exists": lambda value: isinstance(value, bool),
        "cidr": _is_network,
    }
    if not (checks[name](argument) or opaque(argument)):
        raise EventPatternError(f"{_dotted(path)}: invalid {name} argument {argument!r}")


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_string_or_strings(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def _is_string_or_ignore_case(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {"equals-ignore-case"} and isinstance(value["equals-ignore-case"], str)
    return isinstance(value, str)


def _is_anything_but(value: Any) -> bool:
    if isinstance(value, Mapping):
        if len(value) != 1:
            return False
        ((name, argument),) = value.items()
        return name in _STRING_OPERATORS and _is_string_or_strings(argument)
    if isinstance(value, list):
        strings = all(isinstance(item, str) for item in value)
        numbers = all(_is_number(item) for item in value)
        return bool(value) and (strings or numbers)
    return isinstance(value, str) or _is_number(value)


def _is_numeric(value: Any) -> bool:
    if not isinstance(value, list) or len(value) not in (2, 4):
        return False
    pairs = zip(value[::2], value[1::2], strict=True)
    return all(op in _COMPARISONS and _is_number(number) for op, number in pairs)


def _is_network(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _dotted(path: Path) -> str:
    return ".".join(path) or "(top level)"


# -- matching --------------------------------------------------------------------------------


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches a pattern that passed ``validate_pattern``."""
    return _node_matches(pattern, (), flatten(event))


def flatten(event: Mapping[str, Any]) -> Leaves:
    """Every leaf value of the event by path; arrays contribute each of their elements."""
    leaves: Leaves = {}
    for path, value in _walk(event, ()):
        leaves.setdefault(path, []).append(value)
    return leaves


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    else:
        yield path, value


def _node_matches(node: Mapping[str, Any], path: Path, leaves: Leaves) -> bool:
    for key, value in node.items():
        if key == "$or":
            if not any(_node_matches(branch, path, leaves) for branch in value):
                return False
        elif isinstance(value, Mapping):
            if not _node_matches(value, (*path, key), leaves):
                return False
        elif not _field_matches(value, leaves.get((*path, key), [])):
            return False
    return True


def _field_matches(filters: Sequence[Any], values: Sequence[Any]) -> bool:
    for item in filters:
        if isinstance(item, Mapping):
            ((name, argument),) = item.items()
            if name == "exists":
                if bool(values) == argument:
                    return True
            elif any(_operator_matches(name, argument, value) for value in values):
                return True
        elif any(_same_value(item, value) for value in values):
            return True
    return False


def _same_value(expected: Any, actual: Any) -> bool:
    # EventBridge compares JSON representations: a bool is never a number, 300 is not 300.0.
    if isinstance(expected, str) or isinstance(actual, str):
        return isinstance(expected, str) and isinstance(actual, str) and expected == actual
    return json.dumps(expected) == json.dumps(actual)


def _operator_matches(name: str, argument: Any, value: Any) -> bool:
    if name == "numeric":
        return _is_number(value) and all(
            _COMPARISONS[op](value, number)
            for op, number in zip(argument[::2], argument[1::2], strict=True)
        )
    if name == "anything-but":
        return _anything_but(argument, value)
    if name == "cidr":
        return _in_network(argument, value)
    return isinstance(value, str) and _string_operator(name, argument, value)


def _string_operator(name: str, argument: Any, value: str) -> bool:
    if isinstance(argument, Mapping):
        expected = argument["equals-ignore-case"].lower()
        value = value.lower()
        return value.startswith(expected) if name == "prefix" else value.endswith(expected)
    options = argument if isinstance(argument, list) else [argument]
    tests: dict[str, Callable[[str], bool]] = {
        "prefix": value.startswith,
        "suffix": value.endswith,
        "equals-ignore-case": lambda option: value.lower() == option.lower(),
        "wildcard": lambda option: _wildcard(option).fullmatch(value) is not None,
    }
    return any(tests[name](option) for option in options)


def _anything_but(argument: Any, value: Any) -> bool:
    if isinstance(argument, Mapping):
        ((name, inner),) = argument.items()
        return isinstance(value, str) and not _string_operator(name, inner, value)
    options = argument if isinstance(argument, list) else [argument]
    return not any(_same_value(option, value) for option in options)


def _in_network(network: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _wildcard(pattern: str) -> re.Pattern[str]:
    # "*" is any run of characters; "\*" is a literal star.
    parts = re.split(r"(\\\*|\*)", pattern)
    regex = "".join(
        ".*" if part == "*" else re.escape("*") if part == "\\*" else re.escape(part)
        for part in parts
    )
    return re.compile(regex, re.DOTALL)
