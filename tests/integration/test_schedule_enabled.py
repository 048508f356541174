"""ScheduleEnabled=true deploys the producer's EveryMinute rule ENABLED.

A module of its own: the local cloud runs one emulator per process, and this test needs a
stack deployed with other parameters than the other modules' pipelines.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pipeline_kit import rule_state
from tweetlens.pipeline import LocalPipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def enabled_pipeline() -> Iterator[LocalPipeline]:
    """ScheduleEnabled=true, with the local scheduler off: the rule is read, never waited for."""
    with LocalPipeline(parameter_overrides={"ScheduleEnabled": "true"}) as started:
        yield started


def test_schedule_is_enabled_when_asked(enabled_pipeline: LocalPipeline) -> None:
    # GIVEN the template deployed with ScheduleEnabled=true
    # WHEN its EveryMinute rule is read back
    # THEN it fires every minute
    assert rule_state(enabled_pipeline) == ("ENABLED", "rate(1 minute)")
