"""What an EventBridge target receives: the event, a constant ``Input``, an ``InputPath`` or an
``InputTransformer`` applied to the event.

Rules followed (EventBridge user guide, "input transformation"):

* ``Input`` is sent as written; ``InputPath`` sends the JSON of the selected value; with
  neither, the whole event is sent as JSON.
* Paths use EventBridge's subset of JSONPath: ``$``, dot names (letters, digits, ``-``, ``_``,
  ``/``), ``[N]`` array indices and ``*``/``[*]`` wildcards (a wildcard selects a list).
* ``InputPathsMap`` names variables used as ``<name>`` in ``InputTemplate``; the predefined
  ``<aws.events.rule-arn>``, ``<aws.events.rule-name>``, ``<aws.events.event.ingestion-time>``,
  ``<aws.events.event>`` (the event without ``detail``) and ``<aws.events.event.json>`` (the
  whole event) need no path. A placeholder naming neither stays as written.
* When the template is JSON (it starts with ``{`` or ``[``), a placeholder outside a string is
  replaced by the value as JSON (strings quoted), and inside a string by its text, unescaped
  (EventBridge does not escape extracted values); the result must parse and is minified. Any
  other template is text and every placeholder becomes the value's text.
* A variable whose path selects nothing is not created: it renders as ``null`` where a JSON
  value stands and as nothing inside a string or text template (the local cloud's reading of
  "won't appear in the output").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tweetlens.localcloud.errors import LocalCloudError
from tweetlens.localcloud.models import InputTransformerConfig, RuleTargetConfig

MAX_PATHS = 100
_SEGMENT = re.compile(r"\.([A-Za-z0-9_\-/]+|\*)|\[(\d+|\*)\]")
_PLACEHOLDER = re.compile(r"<([^<>\s]+)>")
_MISSING = object()


class TargetInputError(LocalCloudError):
    """A target's input settings are invalid, or could not be applied to an event."""


@dataclass(frozen=True)
class JsonPath:
    """A parsed EventBridge JSONPath: a sequence of names, indices and wildcards."""

    text: str
    segments: tuple[str | int | None, ...]

    @property
    def selects_many(self) -> bool:
        return None in self.segments

    def select(self, document: Any) -> Any:
        """The selected value, a list when the path has a wildcard, or ``_MISSING``."""
        found = [document]
        for segment in self.segments:
            found = [child for value in found for child in _children(value, segment)]
        if self.selects_many:
            return found
        return found[0] if found else _MISSING


def _children(value: Any, segment: str | int | None) -> list[Any]:
    if segment is None:
        if isinstance(value, Mapping):
            return list(value.values())
        return list(value) if isinstance(value, list) else []
    if isinstance(segment, int):
        return [value[segment]] if isinstance(value, list) and segment < len(value) else []
    return [value[segment]] if isinstance(value, Mapping) and segment in value else []


def parse_path(text: str) -> JsonPath:
    """Parse a path, or raise ``TargetInputError`` naming what EventBridge would not accept."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise TargetInputError(f"JSON path {text!r} must start with $")
    segments: list[str | int | None] = []
    position = 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise TargetInputError(f"JSON path {text!r} is not supported at {text[position:]!r}")
        name, index = match.groups()
        if name is not None:
            segments.append(None if name == "*" else name)
        else:
            segments.append(None if index == "*" else int(index))
        position = match.end()
    return JsonPath(text, tuple(segments))


def validate_target_input(target: RuleTargetConfig) -> None:
    """Refuse input settings EventBridge refuses (checked when the rule is deployed)."""
    chosen = [
        name
        for name, value in (
            ("Input", target.input),
            ("InputPath", target.input_path),
            ("InputTransformer", target.input_transformer),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        raise TargetInputError(f"target {target.id} sets {' and '.join(chosen)}; at most one")
    if target.input is not None:
        try:
            json.loads(target.input)
        except ValueError as exc:
            raise TargetInputError(f"target {target.id}: Input is not valid JSON") from exc
    if target.input_path is not None:
        parse_path(target.input_path)
    if target.input_transformer is not None:
        _validate_transformer(target.id, target.input_transformer)


def _validate_transformer(target_id: str, transformer: InputTransformerConfig) -> None:
    paths = transformer.input_paths_map
    if len(paths) > MAX_PATHS:
        raise TargetInputError(f"target {target_id}: more than {MAX_PATHS} InputPathsMap entries")
    for name, path in paths.items():
        if name.lower().startswith("aws."):
            raise TargetInputError(f"target {target_id}: InputPathsMap key {name!r} is reserved")
        parse_path(path)


@dataclass(frozen=True)
class RuleContext:
    """What the predefined variables refer to for one delivery."""

    rule_name: str
    rule_arn: str
    ingestion_time: datetime


def render_input(target: RuleTargetConfig, event: Mapping[str, Any], context: RuleContext) -> str:
    """The text the target receives for ``event``; raises ``TargetInputError`` when it cannot."""
    if target.input is not None:
        return target.input
    if target.input_path is not None:
        selected = parse_path(target.input_path).select(event)
        if selected is _MISSING:
            raise TargetInputError(f"InputPath {target.input_path} selects nothing in the event")
        return _compact(selected)
    if target.input_transformer is not None:
        return render_template(target.input_transformer, event, context)
    return _compact(event)


def render_template(
    transformer: InputTransformerConfig, event: Mapping[str, Any], context: RuleContext
) -> str:
    """Fill ``InputTemplate`` with the variables of ``InputPathsMap`` and the predefined ones."""
    variables = _variables(transformer, event, context)
    template = transformer.input_template
    is_json = template.lstrip()[:1] in ("{", "[")
    in_string = _string_positions(template) if is_json else None

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            return match.group(0)
        value = variables[name]
        if in_string is not None and not in_string[match.start()]:
            return "null" if value is _MISSING else _compact(value)
        return "" if value is _MISSING else _text(value)

    rendered = _PLACEHOLDER.sub(replace, template)
    if not is_json:
        return rendered
    try:
        return _compact(json.loads(rendered))
    except ValueError as exc:
        raise TargetInputError(f"InputTemplate did not render valid JSON: {rendered!r}") from exc


def _variables(
    transformer: InputTransformerConfig, event: Mapping[str, Any], context: RuleContext
) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "aws.events.rule-arn": context.rule_arn,
        "aws.events.rule-name": context.rule_name,
        "aws.events.event.ingestion-time": context.ingestion_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws.events.event": {key: value for key, value in event.items() if key != "detail"},
        "aws.events.event.json": dict(event),
    }
    for name, path in transformer.input_paths_map.items():
        variables[name] = parse_path(path).select(event)
    return variables


def _string_positions(template: str) -> list[bool]:
    """For each character of a JSON template, whether it sits inside a string literal."""
    inside: list[bool] = []
    in_string = escaped = False
    for char in template:
        if in_string and not escaped and char == '"':
            inside.append(True)
            in_string = False
            continue
        if not in_string and char == '"':
            in_string = True
        inside.append(in_string)
        escaped = in_string and not escaped and char == "\\"
    return inside


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
