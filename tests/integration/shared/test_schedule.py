"""The producer's EveryMinute schedule, off by default, and the event it fires with."""

from __future__ import annotations

import datetime
import json

import pytest

from tests.integration.pipeline_kit import SCHEDULE_RULE, PostSpec, Recordings, publish, rule_state
from tweetlens.pipeline import PRODUCER, LocalPipeline

pytestmark = pytest.mark.integration


def test_schedule_is_disabled_by_default(pipeline: LocalPipeline) -> None:
    # GIVEN the template deployed with its default ScheduleEnabled
    # WHEN its EveryMinute rule is read back
    # THEN it is a one-minute rate that does not fire
    assert rule_state(pipeline) == ("DISABLED", "rate(1 minute)")


def test_fired_schedule_runs_the_producer_with_a_scheduled_event(
    pipeline: LocalPipeline, recordings: Recordings
) -> None:
    # GIVEN a recording with one post that has no photo
    recording = recordings.build([PostSpec("No photo today", ("cat",))])
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    # (the pipeline is shared: earlier modules' producer runs are in its history)
    earlier = {record.request_id for record in pipeline.cloud.invocations()}

    # WHEN the rule fires
    summary = publish(pipeline, recording)

    # THEN the producer accepted the EventBridge event, naming the rule and the firing time
    assert summary == {
        "pages": 1,
        "posts": 1,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": recording.pages[0].body.meta.newest_id,
    }
    producer = pipeline.cloud.resources[PRODUCER]
    logged = [
        json.loads(line)
        for record in pipeline.cloud.invocations()
        if record.function_name == producer and record.request_id not in earlier
        for line in record.logs.splitlines()
        if '"Scheduled run"' in line
    ]
    assert [entry["rule"] for entry in logged] == [[pipeline.cloud.schedules[SCHEDULE_RULE].arn]]
    fired_at = datetime.datetime.fromisoformat(logged[0]["scheduled_at"])
    assert before <= fired_at <= datetime.datetime.now(datetime.UTC)


def test_producer_refuses_an_event_that_is_not_scheduled(pipeline: LocalPipeline) -> None:
    # GIVEN an invocation event of another shape (an SQS-like record list)
    event = {"Records": [{"body": "{}"}]}

    # WHEN the producer is invoked with it directly
    result = pipeline.cloud.invoke(PRODUCER, event)

    # THEN it fails with InvalidEvent, naming the missing EventBridge fields
    assert result.error is not None
    assert result.error.error_type == "InvalidEvent"
    assert result.error.error_message == (
        "expected an EventBridge scheduled event: version: Field required; id: Field required; "
        "source: Field required; account: Field required; time: Field required; "
        "region: Field required; resources: Field required; detail-type: Field required; "
        "detail: Field required"
    )
