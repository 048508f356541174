"""EventBridge rules and buses of a template: what the local cloud delivers, refused otherwise.

Checked twice. ``check_event_resources`` reads the transformed template before anything is
created, so most refusals need no emulator (a CloudFormation intrinsic stands for a value
not known yet). ``rule_config`` reads a rule again with every value resolved, after the
stack exists, and builds what the event bus delivers from.

Delivered: rules on the default bus or on a bus the stack creates, with a schedule (default
bus only, as in AWS) or an event pattern (``eventpatterns``), and up to five targets that
are Lambda functions of the stack, SQS queues or Step Functions state machines, each with
at most one of ``Input``, ``InputPath``, ``InputTransformer`` and, for a queue,
``SqsParameters.MessageGroupId``. ``RoleArn`` is accepted and not enforced (the emulator
does not evaluate IAM). Anything else fails the deploy with ``UnsupportedEventRuleError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tweetlens.localcloud.errors import UnsupportedEventRuleError
from tweetlens.localcloud.eventinput import TargetInputError, validate_target_input
from tweetlens.localcloud.eventpatterns import EventPatternError, validate_pattern
from tweetlens.localcloud.models import (
    EventRuleConfig,
    InputTransformerConfig,
    RuleTargetConfig,
    TargetKind,
)

DEFAULT_BUS = "default"
MAX_TARGETS = 5
_RULE_PROPERTIES = frozenset(
    {
        "Description",
        "EventBusName",
        "EventPattern",
        "Name",
        "RoleArn",
        "ScheduleExpression",
        "State",
        "Targets",
    }
)
_TARGET_PROPERTIES = frozenset(
    {"Id", "Arn", "Input", "InputPath", "InputTransformer", "RoleArn", "SqsParameters"}
)
_STATES = ("ENABLED", "DISABLED")
_KINDS_BY_TYPE: Mapping[str, TargetKind] = {
    "AWS::Lambda::Function": "lambda",
    "AWS::Lambda::Alias": "lambda",
    "AWS::Lambda::Version": "lambda",
    "AWS::SQS::Queue": "sqs",
    "AWS::StepFunctions::StateMachine": "states",
}
_INTRINSICS = frozenset(
    {
        "Ref",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::Join",
        "Fn::If",
        "Fn::Select",
        "Fn::Split",
        "Fn::ImportValue",
        "Fn::FindInMap",
        "Fn::Base64",
    }
)

# Resolves a target ARN (or an unresolved intrinsic) to the kind of target it is. None means
# "not known yet"; a string that is not a kind is the reason the target is refused.
KindOf = Callable[[Any], TargetKind | str | None]


def is_intrinsic(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _INTRINSICS


def _contains_intrinsic(value: Any) -> bool:
    if is_intrinsic(value):
        return True
    if isinstance(value, Mapping):
        return any(_contains_intrinsic(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_intrinsic(item) for item in value)
    return False


def _as_kind(value: str | None) -> TargetKind | None:
    if value == "lambda":
        return "lambda"
    if value == "sqs":
        return "sqs"
    if value == "states":
        return "states"
    return None


def kind_of_arn(arn: str) -> TargetKind | str:
    """The kind of target an ARN names, or the reason it is not one the local cloud delivers."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return f"target {arn!r} is not an ARN"
    service, resource = parts[2], parts[5]
    if service == "lambda" and resource == "function":
        return "lambda"
    if service == "sqs":
        return "sqs"
    if service == "states" and resource == "stateMachine":
        return "states"
    return f"target {arn} ({service} {resource}): not a Lambda function, SQS queue or state machine"


def static_kind_of(template: Mapping[str, Any]) -> KindOf:
    """Target kinds as far as the template tells before the stack exists."""
    resources: Mapping[str, Any] = template["Resources"]

    def kind(value: Any) -> TargetKind | str | None:
        if isinstance(value, str):
            return kind_of_arn(value)
        referenced = _referenced_resource(value)
        if referenced is None or referenced not in resources:
            return None
        resource_type = resources[referenced].get("Type", "")
        return _KINDS_BY_TYPE.get(resource_type, f"target {referenced} is a {resource_type}")

    return kind


def _referenced_resource(value: Any) -> str | None:
    if not is_intrinsic(value):
        return None
    ((name, argument),) = value.items()
    if name == "Ref" and isinstance(argument, str):
        return argument
    if name == "Fn::GetAtt":
        if isinstance(argument, list) and argument:
            return str(argument[0])
        if isinstance(argument, str):
            return argument.split(".")[0]
    return None


def check_event_resources(template: Mapping[str, Any]) -> None:
    """Refuse, before anything is created, the buses and rules the local cloud cannot run."""
    resources: Mapping[str, Any] = template["Resources"]
    kind_of = static_kind_of(template)
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Events::EventBus":
            _check_bus(logical_id, properties)
        elif resource.get("Type") == "AWS::Events::Rule":
            _check_rule(logical_id, properties, kind_of, resolved=False)
            bus = properties.get("EventBusName")
            referenced = _referenced_resource(bus)
            if referenced is not None and (
                resources.get(referenced, {}).get("Type") != "AWS::Events::EventBus"
            ):
                raise UnsupportedEventRuleError(
                    logical_id, f"EventBusName refers to {referenced}, which is not an event bus"
                )


def _check_bus(logical_id: str, properties: Mapping[str, Any]) -> None:
    if "EventSourceName" in properties:
        raise UnsupportedEventRuleError(logical_id, "a partner event bus (EventSourceName)")
    if "DeadLetterConfig" in properties:
        raise UnsupportedEventRuleError(logical_id, "an event bus DeadLetterConfig")


def _check_rule(
    logical_id: str, properties: Mapping[str, Any], kind_of: KindOf, *, resolved: bool
) -> list[TargetKind | None]:
    """Refuse what cannot be delivered; the kind of each target (None: not known yet)."""
    unknown = sorted(set(properties) - _RULE_PROPERTIES)
    if unknown:
        raise UnsupportedEventRuleError(logical_id, f"rule properties {unknown}")
    has_schedule = "ScheduleExpression" in properties
    if has_schedule == ("EventPattern" in properties):
        raise UnsupportedEventRuleError(
            logical_id, "a rule needs exactly one of ScheduleExpression and EventPattern"
        )
    bus = properties.get("EventBusName", DEFAULT_BUS)
    if has_schedule and not is_intrinsic(bus) and bus_name(bus) != DEFAULT_BUS:
        raise UnsupportedEventRuleError(logical_id, f"a schedule on event bus {bus!r}")
    state = properties.get("State", "ENABLED")
    if not is_intrinsic(state) and state not in _STATES:
        raise UnsupportedEventRuleError(logical_id, f"State {state}")
    if "EventPattern" in properties:
        try:
            validate_pattern(
                properties["EventPattern"], opaque=(lambda _: False) if resolved else is_intrinsic
            )
        except EventPatternError as exc:
            raise UnsupportedEventRuleError(logical_id, f"event pattern: {exc}") from exc
    targets = properties.get("Targets", [])
    if len(targets) > MAX_TARGETS:
        raise UnsupportedEventRuleError(logical_id, f"{len(targets)} targets (at most 5)")
    return [_check_target(logical_id, target, kind_of, resolved=resolved) for target in targets]


def _check_target(
    logical_id: str, target: Mapping[str, Any], kind_of: KindOf, *, resolved: bool
) -> TargetKind | None:
    name = target.get("Id", "?")
    unknown = sorted(set(target) - _TARGET_PROPERTIES)
    if unknown:
        raise UnsupportedEventRuleError(logical_id, f"target {name} sets {unknown}")
    found = kind_of(target.get("Arn"))
    kind = _as_kind(found)
    if kind is None and (found is not None or resolved):
        raise UnsupportedEventRuleError(logical_id, found or f"target {name} has no Arn")
    if "SqsParameters" in target and kind not in ("sqs", None):
        raise UnsupportedEventRuleError(logical_id, f"target {name}: SqsParameters on a {kind}")
    input_settings = [target.get(key) for key in ("Input", "InputPath", "InputTransformer")]
    if resolved or not _contains_intrinsic(input_settings):
        try:
            validate_target_input(_target(target, kind or "lambda"))
        except TargetInputError as exc:
            raise UnsupportedEventRuleError(logical_id, str(exc)) from exc
    return kind


def bus_name(name_or_arn: str) -> str:
    """A bus name from ``EventBusName``, which may be a name or an ARN."""
    return name_or_arn.rsplit("event-bus/", 1)[-1]


def rule_config(
    logical_id: str,
    properties: Mapping[str, Any],
    *,
    name: str,
    arn: str,
    enabled: bool,
    kind_of: KindOf,
    buses: frozenset[str],
) -> EventRuleConfig:
    """A deployed rule from its properties with every intrinsic resolved."""
    kinds = _check_rule(logical_id, properties, kind_of, resolved=True)
    bus = bus_name(str(properties.get("EventBusName", DEFAULT_BUS)))
    if bus != DEFAULT_BUS and bus not in buses:
        raise UnsupportedEventRuleError(
            logical_id, f"event bus {bus!r}, which this stack does not create"
        )
    targets = [
        _target(target, kind)
        for target, kind in zip(properties.get("Targets", []), kinds, strict=True)
        if kind is not None  # always set once resolved
    ]
    return EventRuleConfig(
        logical_id=logical_id,
        name=name,
        arn=arn,
        event_bus_name=bus,
        enabled=enabled,
        schedule_expression=properties.get("ScheduleExpression"),
        event_pattern=properties.get("EventPattern"),
        targets=targets,
    )


def _target(target: Mapping[str, Any], kind: TargetKind) -> RuleTargetConfig:
    transformer = target.get("InputTransformer")
    return RuleTargetConfig(
        id=str(target.get("Id", "")),
        arn=str(target.get("Arn", "")),
        kind=kind,
        input=target.get("Input"),
        input_path=target.get("InputPath"),
        input_transformer=None
        if transformer is None
        else InputTransformerConfig(
            input_paths_map=dict(transformer.get("InputPathsMap") or {}),
            input_template=transformer.get("InputTemplate", ""),
        ),
        message_group_id=(target.get("SqsParameters") or {}).get("MessageGroupId"),
    )
