"""Starting and stopping ``LocalCloud``: overrides, on-demand schedules, clean shutdown."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from moto.awslambda.models import LambdaFunction

from tests.localcloud.conftest import SAMPLE_TEMPLATE, TEMPLATES, load_event
from tweetlens.localcloud import (
    DeployError,
    LocalCloud,
    LocalCloudError,
    UnsupportedResourceError,
)

pytestmark = pytest.mark.integration

ORIGINAL_INVOKE = LambdaFunction.__dict__["_invoke_lambda"]
LOCAL_CLOUD_THREADS = ("sqs-poller-", "sqs-batch-", "scheduler", "event-bus", "async-invoke-")


def _child_pids() -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent pid is the fourth field after the parenthesised command name.
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.add(int(entry.name))
    return children


def _local_cloud_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(LOCAL_CLOUD_THREADS)]


def test_overrides_disabled_schedule_and_clean_stop() -> None:
    # GIVEN the sample app deployed with Stage=dev and its schedule switched off
    children_before = _child_pids()
    cloud = LocalCloud(
        SAMPLE_TEMPLATE,
        parameter_overrides={"Stage": "dev", "CheckerScheduleEnabled": "false"},
        time_scale=0.01,
    )
    cloud.start()
    try:
        # WHEN a function runs and the disabled schedule is fired on demand
        inspected = cloud.invoke("InspectorFunction", load_event("inspector_note"))
        fired = cloud.fire_schedule("CheckerFunctionEveryMinute")
        assert cloud.wait_until_idle(timeout=60).idle is True
        running_children = _child_pids() - children_before
    finally:
        cloud.stop()
    # THEN the override reached the environment and the disabled rule still fires on demand
    assert inspected.payload["env"]["STAGE"] == "dev"
    assert fired.payload == {"started": 3}
    # AND stopping left no worker process, no thread, no moto patch behind; twice is fine
    assert len(running_children) >= 3
    assert _child_pids() - children_before == set()
    assert _local_cloud_threads() == []
    assert LambdaFunction.__dict__["_invoke_lambda"] is ORIGINAL_INVOKE
    cloud.stop()
    with pytest.raises(LocalCloudError, match="not started"):
        _ = cloud.resources


def test_disabled_rule_is_reported_disabled() -> None:
    # GIVEN the schedule parameter switched off
    # WHEN the cloud is up
    with LocalCloud(
        SAMPLE_TEMPLATE,
        parameter_overrides={"CheckerScheduleEnabled": "false"},
        run_pollers=False,
    ) as cloud:
        rule = cloud.schedules["CheckerFunctionEveryMinute"]
        state = cloud.client("events").describe_rule(Name=rule.name)["State"]
    # THEN the rule is DISABLED in the emulator and in the deployed view
    assert (rule.enabled, state) == (False, "DISABLED")


def test_failed_deploy_leaves_nothing_running() -> None:
    # GIVEN a template with an unsupported resource type
    cloud = LocalCloud(TEMPLATES / "unsupported_type.yaml")
    # WHEN the cloud starts
    with pytest.raises(UnsupportedResourceError, match="NightlySchedule"):
        cloud.start()
    # THEN the emulator is down again, so another cloud can start in this process
    with LocalCloud(TEMPLATES / "inline_definition.yaml") as other:
        assert other.state_machines["Recorder"].type == "EXPRESS"


def test_mapping_with_visibility_shorter_than_timeout_is_refused() -> None:
    # GIVEN a queue visibility timeout of 5 s for a function with a 30 s timeout
    cloud = LocalCloud(TEMPLATES / "short_visibility.yaml")
    # WHEN the cloud starts
    # THEN the deploy fails as Lambda's CreateEventSourceMapping does
    with pytest.raises(
        DeployError, match=r"Consumer: queue visibility timeout 5s of .* function timeout 30s"
    ):
        cloud.start()
