"""Schedule expressions and the scheduler thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tweetlens.localcloud.errors import ScheduleExpressionError
from tweetlens.localcloud.models import EventRuleConfig, RuleTargetConfig
from tweetlens.localcloud.scheduler import Scheduler, parse_schedule, scheduled_event

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(1 minute)", MONDAY_NOON, MONDAY_NOON + timedelta(minutes=1)),
        (
            "rate(5 minutes)",
            MONDAY_NOON + timedelta(minutes=7),
            MONDAY_NOON + timedelta(minutes=10),
        ),
        ("rate(2 hours)", MONDAY_NOON, MONDAY_NOON + timedelta(hours=2)),
        ("rate(1 day)", MONDAY_NOON, MONDAY_NOON + timedelta(days=1)),
    ],
)
def test_rate_fires_whole_periods_after_the_origin(
    expression: str, after: datetime, expected: datetime
) -> None:
    # GIVEN a rate schedule started at MONDAY_NOON
    schedule = parse_schedule(expression)
    # WHEN the next fire after a moment is asked
    # THEN it is the next whole period since the start
    assert schedule.next_after(after, MONDAY_NOON) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 23, 12, 15, tzinfo=UTC)),
        ("cron(0 10 * * ? *)", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("cron(30 8 ? * MON-FRI *)", datetime(2026, 11, 24, 8, 30, tzinfo=UTC)),
        ("cron(0 18 ? * 7 *)", datetime(2026, 11, 28, 18, 0, tzinfo=UTC)),
        ("cron(0 0 1 JAN,JUL ? *)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(5 12 23 11 ? 2027)", datetime(2027, 11, 23, 12, 5, tzinfo=UTC)),
        ("cron(1-3 12 * * ? *)", datetime(2026, 11, 23, 12, 1, tzinfo=UTC)),
    ],
)
def test_cron_next_fire(expression: str, expected: datetime) -> None:
    # GIVEN an AWS 6-field cron expression
    schedule = parse_schedule(expression)
    # WHEN the next fire after Monday 2026-11-23 12:00:30 UTC is asked
    # THEN it is the first matching minute strictly after it
    assert schedule.next_after(MONDAY_NOON, MONDAY_NOON) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "singular unit for 1"),
        ("rate(5 minute)", "singular unit for 1"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 seconds)", "neither rate"),
        ("cron(0 12 * * *)", "6 fields"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 L * ? *)", "not supported"),
        ("cron(0 12 ? * 6#3 *)", "not supported"),
        ("cron(0 12 15W * ? *)", "not supported"),
        ("cron(61 12 * * ? *)", "out of range"),
        ("cron(0 12 * FOO ? *)", "not a number"),
    ],
)
def test_invalid_or_unsupported_expressions_are_refused(expression: str, message: str) -> None:
    # GIVEN an expression outside the supported subset
    # WHEN it is parsed
    # THEN a ScheduleExpressionError says why
    with pytest.raises(ScheduleExpressionError, match=message):
        parse_schedule(expression)


def _rule(**changes: Any) -> EventRuleConfig:
    values: dict[str, Any] = {
        "logical_id": "CheckerFunctionEveryMinute",
        "name": "local-CheckerFunctionEveryMinute-ABC",
        "arn": "arn:aws:events:us-east-1:123456789012:rule/local-CheckerFunctionEveryMinute-ABC",
        "event_bus_name": "default",
        "schedule_expression": "rate(1 minute)",
        "enabled": True,
        "targets": [
            RuleTargetConfig(
                id="Checker",
                arn="arn:aws:lambda:us-east-1:123456789012:function:local-CheckerFunction-XYZ",
                kind="lambda",
            )
        ],
    }
    values.update(changes)
    return EventRuleConfig(**values)


def test_scheduled_event_has_eventbridge_shape() -> None:
    # GIVEN a schedule rule
    # WHEN its event is built
    event = scheduled_event(_rule(), "123456789012", "us-east-1", MONDAY_NOON)
    # THEN it is EventBridge's scheduled event
    assert event == {
        "version": "0",
        "id": event["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T12:00:30Z",
        "region": "us-east-1",
        "resources": [_rule().arn],
        "detail": {},
    }
    assert len(event["id"]) == 36


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, rule: EventRuleConfig, event: dict[str, Any]) -> None:
        self.calls.append((rule.logical_id, event))


@pytest.fixture
def events_client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("events", region_name="us-east-1")
        client.put_rule(Name="on", ScheduleExpression="rate(1 minute)", State="ENABLED")
        client.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
        yield client


def test_enabled_rule_fires_on_time_and_disabled_never(events_client: Any) -> None:
    # GIVEN an enabled and a disabled rule, and a clock running 240x faster than real time
    real_start = time.monotonic()

    def fast_clock() -> datetime:
        return MONDAY_NOON + timedelta(seconds=(time.monotonic() - real_start) * 240)

    recorder = _Recorder()
    rules = {
        "On": _rule(logical_id="On", name="on"),
        "Off": _rule(logical_id="Off", name="off", enabled=False),
    }
    scheduler = Scheduler(
        rules,
        events=events_client,
        deliver=recorder,
        account_id="123456789012",
        region="us-east-1",
        clock=fast_clock,
        tick_seconds=0.01,
    )
    # WHEN it runs for a little over two simulated minutes
    scheduler.start()
    time.sleep(0.6)
    scheduler.stop()
    # THEN only the enabled rule fired, once per minute, with the scheduled event
    assert [rule for rule, _ in recorder.calls] == ["On", "On"]
    assert recorder.calls[0][1]["detail-type"] == "Scheduled Event"
    assert recorder.calls[0][1]["resources"] == [rules["On"].arn]
