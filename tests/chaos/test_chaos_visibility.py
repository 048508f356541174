"""The chaos stack's compressed visibility timeout against the classifier's timeout.

template.yaml keeps Lambda's advice for SQS event sources (visibility 6 x the function's
timeout); the chaos run compresses visibility for quick redeliveries and keeps instead the
documented exception (tweetlens/chaos/config.py, README "Reliability: the chaos run"): a batch
comes back only after the batching window, Lambda's init limit and the timeout have passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tweetlens.chaos import ChaosConfig
from tweetlens.chaos.config import (
    BATCHING_WINDOW_SECONDS,
    CLASSIFIER_TIMEOUT_SECONDS,
    INIT_LIMIT_SECONDS,
    QUEUE_VISIBILITY_SECONDS,
    ROUTE_QUEUES,
    WorkflowType,
    longest_hold_seconds,
)
from tweetlens.localcloud.packaging import load_template
from tweetlens.localcloud.runtime import INIT_TIMEOUT_SECONDS
from tweetlens.project import TEMPLATE_NAME

REPO_TEMPLATE = Path(__file__).resolve().parent.parent.parent / TEMPLATE_NAME


def _by_workflow_type(value: dict[str, Any]) -> dict[str, Any]:
    condition, express, standard = value["Fn::If"]
    assert condition == "IsExpress"
    return {"EXPRESS": express, "STANDARD": standard}


def test_the_chaos_figures_are_the_template_s() -> None:
    # GIVEN template.yaml as written
    resources = load_template(REPO_TEMPLATE)["Resources"]
    classifier = resources["ClassifierFunction"]["Properties"]
    # WHEN the classifier's timeout, its mappings' batching windows and the route queues'
    # visibility are read
    timeout = _by_workflow_type(classifier["Timeout"])
    windows = [
        _by_workflow_type(event["Properties"]["MaximumBatchingWindowInSeconds"])
        for event in classifier["Events"].values()
        if event["Type"] == "SQS"
    ]
    visibility = [
        _by_workflow_type(resources[queue]["Properties"]["VisibilityTimeout"])
        for queue in ROUTE_QUEUES.values()
    ]
    # THEN they are the figures the chaos run's rule is computed from, and the template keeps
    # Lambda's 6 x
    assert timeout == CLASSIFIER_TIMEOUT_SECONDS
    assert windows == [BATCHING_WINDOW_SECONDS] * len(ROUTE_QUEUES)
    assert visibility == [QUEUE_VISIBILITY_SECONDS] * len(ROUTE_QUEUES)
    for workflow_type, seconds in QUEUE_VISIBILITY_SECONDS.items():
        assert seconds == 6 * CLASSIFIER_TIMEOUT_SECONDS[workflow_type]


def test_the_init_limit_is_lambda_s_as_the_local_runtime_names_it() -> None:
    # GIVEN / WHEN Lambda's init limit as the rule counts it and as the local runtime names it
    # (which lets a function with a longer timeout init for as long as that)
    # THEN they are the same 10 s
    assert INIT_LIMIT_SECONDS == INIT_TIMEOUT_SECONDS == 10


@pytest.mark.parametrize(
    ("workflow_type", "posts", "visibility", "hold"),
    [
        ("STANDARD", 40, 75.0, 75),
        ("STANDARD", 500, 75.0, 75),
        ("EXPRESS", 40, 432.0, 370),
        ("EXPRESS", 500, 432.0, 370),
    ],
)
def test_a_batch_comes_back_only_after_its_invocation_can_have_ended(
    workflow_type: WorkflowType, posts: int, visibility: float, hold: int
) -> None:
    # GIVEN the chaos run's configuration, as `tweetlens chaos` and the tests build it
    config = ChaosConfig.for_posts(posts, seed=1, workflow_type=workflow_type)
    # WHEN its compressed visibility is set against the longest a batch may be held
    # THEN it is at least that (window + init limit + timeout), the documented exception to
    # Lambda's 6 x the classifier's timeout, which it does not reach
    assert (config.kill_recovery_seconds, longest_hold_seconds(workflow_type)) == (
        visibility,
        hold,
    )
    assert hold <= visibility < 6 * CLASSIFIER_TIMEOUT_SECONDS[workflow_type]


def test_a_visibility_below_the_hold_is_refused() -> None:
    # GIVEN / WHEN a STANDARD run asked for the old 1/6 (60 s: the timeout, without the
    # batching window and the init)
    with pytest.raises(ValidationError) as refused:
        ChaosConfig.for_posts(40, seed=1, workflow_type="STANDARD", visibility_factor=1 / 6)
    # THEN it is refused, saying what the visibility must cover
    assert [error["msg"] for error in refused.value.errors()] == [
        "Value error, visibility_factor 0.166667 makes the route queues' visibility 60 s, "
        "below the 75 s a batch may be held: the 5 s batching window, Lambda's 10 s init "
        "limit and the classifier's 60 s timeout"
    ]
