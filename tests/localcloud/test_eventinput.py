"""What a rule target receives: Input, InputPath, InputTransformer. No network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tweetlens.localcloud.eventinput import (
    RuleContext,
    TargetInputError,
    parse_path,
    render_input,
    validate_target_input,
)
from tweetlens.localcloud.models import InputTransformerConfig, RuleTargetConfig

EC2_EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {
        "instance-id": "i-0123456789",
        "state": "RUNNING",
        "count": 3,
        "tags": [{"key": "team", "value": "cats"}, {"key": "cost", "value": "low"}],
    },
}
CONTEXT = RuleContext(
    rule_name="example",
    rule_arn="arn:aws:events:us-east-1:123456789012:rule/example",
    ingestion_time=datetime(2015, 11, 11, 21, 29, 55, tzinfo=UTC),
)
PATHS = {"instance": "$.detail.instance-id", "state": "$.detail.state", "count": "$.detail.count"}


def _target(**settings: Any) -> RuleTargetConfig:
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    return RuleTargetConfig(id="T", arn=queue, kind="sqs", **settings)


def _transform(template: str, paths: dict[str, str] | None = None) -> str:
    transformer = InputTransformerConfig(
        input_paths_map=PATHS if paths is None else paths, input_template=template
    )
    return render_input(_target(input_transformer=transformer), EC2_EVENT, CONTEXT)


def test_without_input_settings_the_whole_event_is_sent() -> None:
    # GIVEN a target without Input, InputPath or InputTransformer
    # WHEN an event is rendered for it
    # THEN it receives the event as JSON
    assert json.loads(render_input(_target(), EC2_EVENT, CONTEXT)) == EC2_EVENT


def test_constant_input_is_sent_as_written() -> None:
    # GIVEN a constant Input
    # WHEN an event is rendered
    # THEN the Input text is sent unchanged
    assert render_input(_target(input='{"a": [1, 2]}'), EC2_EVENT, CONTEXT) == '{"a": [1, 2]}'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EC2_EVENT),
        ("$.detail", EC2_EVENT["detail"]),
        ("$.detail.instance-id", "i-0123456789"),
        ("$.detail-type", "EC2 Instance State-change Notification"),
        ("$.resources[0]", "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"),
        ("$.detail.tags[*].value", ["cats", "low"]),
        ("$.detail.tags.*.key", ["team", "cost"]),
    ],
)
def test_input_path_sends_the_selected_value(path: str, expected: Any) -> None:
    # GIVEN an InputPath
    # WHEN an event is rendered
    # THEN the target receives the JSON of the selected value
    assert json.loads(render_input(_target(input_path=path), EC2_EVENT, CONTEXT)) == expected


def test_input_path_selecting_nothing_fails_the_delivery() -> None:
    # GIVEN an InputPath to a field the event lacks
    # WHEN an event is rendered
    # THEN the delivery fails, naming the path
    with pytest.raises(TargetInputError, match=r"InputPath \$.detail.gone selects nothing"):
        render_input(_target(input_path="$.detail.gone"), EC2_EVENT, CONTEXT)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # the examples of EventBridge's user guide
        ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
        (
            '"instance \\"<instance>\\" is in <state>"',
            '"instance \\"i-0123456789\\" is in RUNNING"',
        ),
        ("<instance> is in state <state>", "i-0123456789 is in state RUNNING"),
        (
            '{"instance" : <instance>, "state": <state>}',
            '{"instance":"i-0123456789","state":"RUNNING"}',
        ),
        (
            '{"state": "<state>", "status": "instance \\"<instance>\\" is in <state>"}',
            '{"state":"RUNNING","status":"instance \\"i-0123456789\\" is in RUNNING"}',
        ),
        (
            '{"instance": <instance>, "state": [9, <state>, true], "Transformed": "Yes"}',
            '{"instance":"i-0123456789","state":[9,"RUNNING",true],"Transformed":"Yes"}',
        ),
        ('{"count": <count>, "label": "<count> left"}', '{"count":3,"label":"3 left"}'),
        ('"<aws.events.rule-name> triggered"', '"example triggered"'),
        (
            '{"rule": <aws.events.rule-arn>, "at": <aws.events.event.ingestion-time>}',
            '{"rule":"arn:aws:events:us-east-1:123456789012:rule/example",'
            '"at":"2015-11-11T21:29:55Z"}',
        ),
        ('{"x": <unknown>, "y": 1}', None),
    ],
)
def test_input_template_places_values_as_eventbridge_does(
    template: str, expected: str | None
) -> None:
    # GIVEN an InputTransformer template
    # WHEN an event is rendered
    # THEN strings are quoted where a JSON value stands, left bare inside strings and text,
    # JSON templates are minified, and an unknown placeholder stays (here: invalid JSON)
    if expected is None:
        with pytest.raises(TargetInputError, match="did not render valid JSON"):
            _transform(template)
    else:
        assert _transform(template) == expected


def test_predefined_event_variables_hold_the_event_with_and_without_detail() -> None:
    # GIVEN a template with the original event, with and without its detail
    template = '{"event": <aws.events.event>, "full": <aws.events.event.json>}'
    # WHEN an event is rendered
    rendered = json.loads(_transform(template))
    # THEN both are objects, only one with the detail
    assert rendered["full"] == EC2_EVENT
    assert rendered["event"] == {key: v for key, v in EC2_EVENT.items() if key != "detail"}


def test_a_variable_whose_path_selects_nothing_is_null_or_empty() -> None:
    # GIVEN a variable for a field the event lacks
    paths = {"gone": "$.detail.gone"}
    # WHEN it is used as a JSON value and inside a string
    rendered = _transform('{"value": <gone>, "text": "[<gone>]"}', paths)
    # THEN it renders as null and as nothing
    assert rendered == '{"value":null,"text":"[]"}'


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"input": "{}", "input_path": "$.detail"}, "sets Input and InputPath; at most one"),
        ({"input": "not json"}, "Input is not valid JSON"),
        ({"input_path": "detail.state"}, "must start with \\$"),
        ({"input_path": "$['detail']"}, "not supported at"),
        ({"input_path": "$..state"}, "not supported at"),
        (
            {
                "input_transformer": InputTransformerConfig(
                    input_paths_map={"aws.mine": "$.id"}, input_template="<aws.mine>"
                )
            },
            "key 'aws.mine' is reserved",
        ),
        (
            {
                "input_transformer": InputTransformerConfig(
                    input_paths_map={f"v{i}": "$.id" for i in range(101)}, input_template="x"
                )
            },
            "more than 100 InputPathsMap entries",
        ),
    ],
)
def test_invalid_input_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    # GIVEN input settings EventBridge refuses
    # WHEN the target is validated
    # THEN it is refused with the reason
    with pytest.raises(TargetInputError, match=message):
        validate_target_input(_target(**settings))


def test_path_segments_are_parsed() -> None:
    # GIVEN a path with names, an index and a wildcard
    # WHEN it is parsed
    path = parse_path("$.detail.tags[1].value")
    # THEN each segment is kept in order
    assert (path.segments, path.selects_many) == (("detail", "tags", 1, "value"), False)
