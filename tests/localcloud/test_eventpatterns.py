"""EventBridge event patterns: which events match, and which patterns are refused. No network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from tweetlens.localcloud.eventpatterns import EventPatternError, matches, validate_pattern

STATUS_CHANGE = {
    "version": "0",
    "id": "315c1398-40ff-a850-213b-158f73e60175",
    "detail-type": "Step Functions Execution Status Change",
    "source": "aws.states",
    "account": "123456789012",
    "time": "2026-11-23T12:00:30Z",
    "region": "us-east-1",
    "resources": ["arn:aws:states:us-east-1:123456789012:execution:Gate:run-1"],
    "detail": {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:Gate:run-1",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Gate",
        "name": "run-1",
        "status": "FAILED",
        "startDate": 1795435200000,
        "stopDate": 1795435201500,
        "output": None,
        "error": "GateClosed",
        "cause": "",
        "redriveCount": 0,
        "score": 300,
        "ratio": 0.5,
        "retried": True,
        "tags": ["urgent", "cats"],
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 0}],
        "origin": {"ip": "10.0.0.17", "host": {"name": "img.example.com"}},
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.states"]}, True),
        ({"source": ["aws.ec2", "aws.states"]}, True),
        ({"source": ["AWS.STATES"]}, False),
        ({"detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"]}}, True),
        ({"detail": {"status": ["SUCCEEDED"]}}, False),
        # numbers match by their JSON text: 300 is not 300.0, and a bool is not a number
        ({"detail": {"score": [300]}}, True),
        ({"detail": {"score": [300.0]}}, False),
        ({"detail": {"redriveCount": [False]}}, False),
        ({"detail": {"retried": [True]}}, True),
        ({"detail": {"retried": [1]}}, False),
        # null is not the empty string, and a missing field is neither
        ({"detail": {"output": [None]}}, True),
        ({"detail": {"output": [""]}}, False),
        ({"detail": {"cause": [""]}}, True),
        ({"detail": {"missing": [None]}}, False),
        # arrays: any element; arrays of objects by their fields
        ({"detail": {"tags": ["cats"]}}, True),
        ({"detail": {"items": {"sku": ["B-7"]}}}, True),
        ({"detail": {"items": {"qty": [{"numeric": [">", 1]}]}}}, True),
        ({"detail": {"origin": {"host": {"name": ["img.example.com"]}}}}, True),
        ({"detail": {"origin": ["10.0.0.17"]}}, False),
        ({"detail": {"name": [{"prefix": "run-"}]}}, True),
        ({"detail": {"name": [{"prefix": {"equals-ignore-case": "RUN-"}}]}}, True),
        ({"detail": {"name": [{"suffix": "-1"}]}}, True),
        ({"detail": {"name": [{"suffix": {"equals-ignore-case": "UN-1"}}]}}, True),
        ({"detail": {"status": [{"equals-ignore-case": "failed"}]}}, True),
        ({"detail": {"status": [{"anything-but": "RUNNING"}]}}, True),
        ({"detail": {"status": [{"anything-but": ["FAILED", "ABORTED"]}]}}, False),
        ({"detail": {"status": [{"anything-but": {"prefix": "RUN"}}]}}, True),
        ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
        ({"detail": {"score": [{"anything-but": [100, 200]}]}}, True),
        ({"detail": {"score": [{"numeric": [">", 0, "<=", 300]}]}}, True),
        ({"detail": {"ratio": [{"numeric": ["<", 0.5]}]}}, False),
        ({"detail": {"retried": [{"numeric": [">", 0]}]}}, False),
        ({"detail": {"error": [{"exists": True}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        # exists looks at leaves only: an object is not a leaf
        ({"detail": {"origin": [{"exists": True}]}}, False),
        ({"detail": {"origin": {"ip": [{"cidr": "10.0.0.0/24"}]}}}, True),
        ({"detail": {"origin": {"ip": [{"cidr": "10.0.1.0/24"}]}}}, False),
        ({"detail": {"name": [{"wildcard": "r*-?"}]}}, False),
        ({"detail": {"name": [{"wildcard": "r*1"}]}}, True),
        ({"detail": {"$or": [{"status": ["SUCCEEDED"]}, {"error": ["GateClosed"]}]}}, True),
        ({"detail": {"$or": [{"status": ["SUCCEEDED"]}, {"error": ["Other"]}]}}, False),
        # every field of the pattern must match
        ({"source": ["aws.states"], "detail": {"status": ["SUCCEEDED"]}}, False),
    ],
)
def test_pattern_matching_follows_eventbridge(pattern: dict[str, Any], expected: bool) -> None:
    # GIVEN a valid pattern and a Step Functions status-change event
    validate_pattern(pattern)
    # WHEN the event is matched
    # THEN the answer is EventBridge's
    assert matches(pattern, STATUS_CHANGE) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({}, "non-empty JSON object"),
        ({"source": []}, "source: empty arrays are not allowed"),
        ({"source": "aws.states"}, "source: must be an object or an array"),
        ({"detail": {"name": [{"prefx": "run"}]}}, "detail.name: operator 'prefx' is not"),
        ({"detail": {"name": [{"prefix": "a", "suffix": "b"}]}}, "neither a value nor one"),
        ({"detail": {"score": [{"numeric": [">", "1"]}]}}, "invalid numeric argument"),
        ({"detail": {"score": [{"numeric": ["!=", 1]}]}}, "invalid numeric argument"),
        ({"detail": {"status": [{"anything-but": ["a", 1]}]}}, "invalid anything-but"),
        ({"detail": {"status": [{"anything-but": {"numeric": [">", 1]}}]}}, "anything-but"),
        ({"detail": {"status": [{"exists": "yes"}]}}, "invalid exists argument"),
        ({"detail": {"ip": [{"cidr": "10.0.0.300/8"}]}}, "invalid cidr argument"),
        ({"detail": {"$or": [{"status": ["A"]}]}}, "$or needs a list of 2 or more"),
        ({"detail": {"status": [["nested"]]}}, "neither a value nor one operator"),
    ],
)
def test_patterns_eventbridge_or_the_local_cloud_cannot_evaluate_are_refused(
    pattern: Any, message: str
) -> None:
    # GIVEN a pattern EventBridge would refuse, or one using an unknown operator
    # WHEN it is validated
    # THEN it is refused, saying where
    with pytest.raises(EventPatternError, match=message.replace("$", r"\$")):
        validate_pattern(pattern)


def test_unresolved_intrinsics_pass_as_opaque_values() -> None:
    # GIVEN a template's pattern whose values are not resolved yet
    pattern = {"detail": {"stateMachineArn": [{"Ref": "Gate"}]}}
    # WHEN it is validated with intrinsics marked opaque
    # THEN it is accepted, and the same pattern is refused once it must be literal
    validate_pattern(pattern, opaque=lambda value: isinstance(value, dict) and "Ref" in value)
    with pytest.raises(EventPatternError, match="operator 'Ref' is not supported"):
        validate_pattern(pattern)


def test_moto_matcher_still_differs_from_eventbridge() -> None:
    # GIVEN the cases that keep the local cloud from using moto's matcher
    number_text = {"detail": {"score": [300.0]}}
    typo = {"detail": {"name": [{"prefx": "zzz"}]}}
    # WHEN moto matches them
    # THEN it says yes where EventBridge says no (if this fails, moto's may now be usable)
    assert EventPattern.load(json.dumps(number_text)).matches_event(STATUS_CHANGE) is True
    assert EventPattern.load(json.dumps(typo)).matches_event(STATUS_CHANGE) is True
    assert matches(number_text, STATUS_CHANGE) is False
