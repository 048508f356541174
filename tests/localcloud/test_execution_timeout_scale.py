"""``execution_timeout_scale``: a workflow's TimeoutSeconds shrunk for tests of timeouts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud

pytestmark = pytest.mark.integration

# The sample GateStateMachine declares TimeoutSeconds 2.
SCALE = 0.1


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False, execution_timeout_scale=SCALE
    ) as local_cloud:
        yield local_cloud


def test_declared_timeout_is_scaled(cloud: LocalCloud) -> None:
    # GIVEN an execution that would linger in a 600 s Wait (time itself is not scaled)
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=cloud.resources["GateStateMachine"],
        name="scaled",
        input=json.dumps({"mode": "linger"}),
    )["executionArn"]

    # WHEN it runs
    deadline = time.monotonic() + 5
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "still RUNNING: TimeoutSeconds was not scaled"
        time.sleep(0.02)

    # THEN it timed out after 2 s x 0.1, well before its declared 2 s
    assert (described["status"], described["error"]) == ("TIMED_OUT", "States.Timeout")
    seconds = (described["stopDate"] - described["startDate"]).total_seconds()
    assert 0.15 <= seconds < 1.5


def test_scale_must_be_positive() -> None:
    # GIVEN / WHEN a cloud is made with a zero scale THEN it is refused by name
    with pytest.raises(ValueError, match="execution_timeout_scale must be positive"):
        LocalCloud(SAMPLE_TEMPLATE, execution_timeout_scale=0)
