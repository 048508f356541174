"""EventBridge rules in a template: what deploys, and what fails the deploy naming the rule.

Everything here is checked before the emulator is involved (``prepare``) or on resolved
properties (``rule_config``): no network.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.localcloud.conftest import SAMPLE_APP
from tweetlens.localcloud.deploy import prepare
from tweetlens.localcloud.errors import UnsupportedEventRuleError
from tweetlens.localcloud.eventrules import kind_of_arn, rule_config
from tweetlens.localcloud.models import InputTransformerConfig, RuleTargetConfig

REGION = "us-east-1"
FUNCTION_ARN = {"Fn::GetAtt": ["Handler", "Arn"]}
PATTERN = {"source": ["aws.states"], "detail": {"status": ["FAILED"]}}
BASE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "Handler": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Runtime": "python3.12",
                "CodeUri": str(SAMPLE_APP / "functions"),
                "Handler": "validator.app.lambda_handler",
            },
        },
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "app"}},
    },
}


def _template(tmp_path: Path, **resources: Any) -> Path:
    template = copy.deepcopy(BASE)
    template["Resources"].update(resources)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    return path


def _rule(targets: list[dict[str, Any]] | None = None, **properties: Any) -> dict[str, Any]:
    """A rule with PATTERN and one function target; a property given as None is left out."""
    body: dict[str, Any] = {"EventPattern": PATTERN, **properties}
    body = {key: value for key, value in body.items() if value is not None}
    body["Targets"] = targets if targets is not None else [{"Id": "T", "Arn": FUNCTION_ARN}]
    return {"Type": "AWS::Events::Rule", "Properties": body}


def test_supported_rules_and_function_events_pass_the_checks(tmp_path: Path) -> None:
    # GIVEN pattern and schedule rules to a function, a queue and on a bus of the stack,
    # and SAM's EventBridgeRule function event with an input transformer
    sam_function = copy.deepcopy(BASE["Resources"]["Handler"])
    sam_function["Properties"]["Events"] = {
        "Failed": {
            "Type": "EventBridgeRule",
            "Properties": {
                "Pattern": PATTERN,
                "InputTransformer": {
                    "InputPathsMap": {"name": "$.detail.name"},
                    "InputTemplate": '{"name": <name>}',
                },
            },
        }
    }
    template = _template(
        tmp_path,
        Listener=sam_function,
        ToQueue=_rule(
            [
                {
                    "Id": "Q",
                    "Arn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "InputPath": "$.detail",
                    "SqsParameters": {"MessageGroupId": "g"},
                }
            ],
            EventBusName={"Ref": "Bus"},
        ),
        Nightly=_rule(
            [{"Id": "F", "Arn": FUNCTION_ARN, "Input": '{"a": 1}'}],
            EventPattern=None,
            ScheduleExpression="rate(1 day)",
        ),
    )
    # WHEN the template is prepared
    prepared = prepare(template, {}, REGION)
    # THEN nothing is refused, and SAM's event became a rule with the transformer kept
    target = prepared.template["Resources"]["ListenerFailed"]["Properties"]["Targets"][0]
    assert target["InputTransformer"]["InputTemplate"] == '{"name": <name>}'


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (_rule([{"Id": "T", "Arn": {"Ref": "Topic"}}]), "target Topic is a AWS::SNS::Topic"),
        (
            _rule([{"Id": "T", "Arn": "arn:aws:sns:us-east-1:123456789012:alerts"}]),
            "(sns alerts): not a Lambda function, SQS queue or state machine",
        ),
        (
            _rule([{"Id": "T", "Arn": FUNCTION_ARN, "RetryPolicy": {"MaximumRetryAttempts": 1}}]),
            "target T sets ['RetryPolicy']",
        ),
        (
            _rule([{"Id": "T", "Arn": FUNCTION_ARN, "DeadLetterConfig": {"Arn": "x"}}]),
            "target T sets ['DeadLetterConfig']",
        ),
        (
            _rule([{"Id": "T", "Arn": FUNCTION_ARN, "Input": "{}", "InputPath": "$.detail"}]),
            "target T sets Input and InputPath; at most one",
        ),
        (
            _rule([{"Id": "T", "Arn": FUNCTION_ARN, "SqsParameters": {"MessageGroupId": "g"}}]),
            "target T: SqsParameters on a lambda",
        ),
        (
            _rule(EventPattern={"detail": {"status": [{"prefx": "F"}]}}),
            "event pattern: detail.status: operator 'prefx' is not supported",
        ),
        (
            _rule(ScheduleExpression="rate(1 day)"),
            "a rule needs exactly one of ScheduleExpression and EventPattern",
        ),
        (_rule(EventBusName={"Ref": "Queue"}), "EventBusName refers to Queue"),
        (_rule(State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"), "State ENABLED_WITH"),
    ],
)
def test_rules_the_local_cloud_cannot_deliver_fail_the_deploy(
    tmp_path: Path, rule: dict[str, Any], reason: str
) -> None:
    # GIVEN a rule with something the local cloud does not emulate
    template = _template(tmp_path, Watcher=rule)
    # WHEN the template is prepared
    # THEN the deploy fails, naming the rule and what is unsupported
    with pytest.raises(UnsupportedEventRuleError) as refused:
        prepare(template, {}, REGION)
    assert refused.value.logical_id == "Watcher"
    assert reason in refused.value.reason
    assert str(refused.value).startswith("Watcher: ")


def test_schedule_on_a_custom_bus_and_partner_buses_are_refused(tmp_path: Path) -> None:
    # GIVEN a schedule on a custom bus, and a partner event bus
    schedule = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "ScheduleExpression": "rate(1 day)",
            "EventBusName": "app",
            "Targets": [{"Id": "T", "Arn": FUNCTION_ARN}],
        },
    }
    partner = {
        "Type": "AWS::Events::EventBus",
        "Properties": {"Name": "aws.partner/saas/1", "EventSourceName": "aws.partner/saas/1"},
    }
    # WHEN each template is prepared
    # THEN each is refused with its reason
    with pytest.raises(UnsupportedEventRuleError, match="Nightly: a schedule on event bus 'app'"):
        prepare(_template(tmp_path, Nightly=schedule), {}, REGION)
    with pytest.raises(UnsupportedEventRuleError, match=r"Partner: a partner event bus"):
        prepare(_template(tmp_path, Partner=partner), {}, REGION)


def test_sam_eventbridge_rule_with_a_dead_letter_queue_is_refused(tmp_path: Path) -> None:
    # GIVEN SAM's EventBridgeRule function event with a DeadLetterConfig
    function = copy.deepcopy(BASE["Resources"]["Handler"])
    function["Properties"]["Events"] = {
        "Failed": {
            "Type": "EventBridgeRule",
            "Properties": {"Pattern": PATTERN, "DeadLetterConfig": {"Type": "SQS"}},
        }
    }
    # WHEN the template is prepared
    # THEN the generated rule is refused by its logical id
    with pytest.raises(UnsupportedEventRuleError, match=r"^ListenerFailed: target .*DeadLetter"):
        prepare(_template(tmp_path, Listener=function), {}, REGION)


def _kind_of(arn: Any) -> Any:
    return kind_of_arn(arn) if isinstance(arn, str) else None


def test_resolved_rule_becomes_its_configuration() -> None:
    # GIVEN a rule's properties after the stack resolved them
    properties = {
        "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/app",
        "EventPattern": PATTERN,
        "Targets": [
            {
                "Id": "Q",
                "Arn": "arn:aws:sqs:us-east-1:123456789012:q",
                "InputTransformer": {"InputPathsMap": {"s": "$.source"}, "InputTemplate": "<s>"},
                "SqsParameters": {"MessageGroupId": "g"},
            },
            {"Id": "M", "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"},
        ],
    }
    # WHEN its configuration is built
    rule = rule_config(
        "Watcher",
        properties,
        name="local-Watcher-X",
        arn="arn:aws:events:us-east-1:123456789012:rule/app/local-Watcher-X",
        enabled=True,
        kind_of=_kind_of,
        buses=frozenset({"app"}),
    )
    # THEN the bus is named, and each target has its kind and input settings
    assert (rule.event_bus_name, rule.event_pattern, rule.schedule_expression) == (
        "app",
        PATTERN,
        None,
    )
    assert rule.targets == [
        RuleTargetConfig(
            id="Q",
            arn="arn:aws:sqs:us-east-1:123456789012:q",
            kind="sqs",
            input_transformer=InputTransformerConfig(
                input_paths_map={"s": "$.source"}, input_template="<s>"
            ),
            message_group_id="g",
        ),
        RuleTargetConfig(
            id="M", arn="arn:aws:states:us-east-1:123456789012:stateMachine:m", kind="states"
        ),
    ]


def test_resolved_rule_on_a_bus_the_stack_does_not_create_is_refused() -> None:
    # GIVEN a rule on a bus that is neither the default nor one of the stack
    properties = {"EventBusName": "elsewhere", "EventPattern": PATTERN, "Targets": []}
    # WHEN its configuration is built
    # THEN the deploy fails naming the bus
    with pytest.raises(UnsupportedEventRuleError, match="event bus 'elsewhere', which this"):
        rule_config(
            "Watcher",
            properties,
            name="n",
            arn="a",
            enabled=True,
            kind_of=_kind_of,
            buses=frozenset({"app"}),
        )
