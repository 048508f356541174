"""The bench's baseline app: the original design's shape, with least privilege."""

from __future__ import annotations

from typing import Any

from samcli.yamlhelper import yaml_parse

from tweetlens.bench.designs import BASELINE_TEMPLATE


def _template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(BASELINE_TEMPLATE.read_text(encoding="utf-8"))
    return parsed


def test_one_scheduled_consumer_with_the_originals_timeout() -> None:
    consumer = _template()["Resources"]["ConsumerFunction"]["Properties"]
    assert consumer["Timeout"] == 58
    assert consumer["Events"] == {
        "EveryMinute": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    }


def test_the_queue_outlives_the_consumer_and_dead_letters() -> None:
    queue = _template()["Resources"]["WorkQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * 58
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5


def test_the_consumer_may_do_only_what_it_does() -> None:
    [policy] = _template()["Resources"]["ConsumerFunction"]["Properties"]["Policies"]
    actions = {statement["Sid"]: statement["Action"] for statement in policy["Statement"]}
    assert actions == {
        "ConsumeWork": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
        "Results": ["dynamodb:GetItem", "dynamodb:PutItem"],
        "DetectLabels": "rekognition:DetectLabels",
    }
