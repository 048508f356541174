"""Fixtures of the ClassifyImage state machine tests (the harness is in harness.py).

The X-Ray SDK, which Powertools' Tracer loads even when tracing is disabled, creates its UDP
emitter socket at import; importing it here, at collection, keeps that (unused) socket out of
the tests, which run with pytest-socket's guard on.
"""

from __future__ import annotations

from collections.abc import Iterator

import aws_xray_sdk.core  # noqa: F401
import boto3
import pytest
from aws_lambda_powertools import Metrics

from execution_closer.closer import Closer
from execution_closer.settings import CloserSettings
from tests.unit.statemachine.harness import REGION, RESULTS_TABLE, Workflow, deployed_workflow


@pytest.fixture
def workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    """GIVEN the ClassifyImage state machine deployed against emulated AWS services."""
    with deployed_workflow(monkeypatch) as deployed:
        yield deployed


@pytest.fixture
def closer(workflow: Workflow) -> Closer:
    """GIVEN the execution closer wired to the workflow's table, state machine and DLQ."""
    settings = CloserSettings.model_validate(
        {
            "RESULTS_TABLE": RESULTS_TABLE,
            "OPEN_CLAIMS_INDEX": "OpenClaims",
            "STATE_MACHINE_ARN": workflow.state_machine_arn,
            "WORKFLOW_DLQ_URL": workflow.dead_letter_queue_url,
        }
    )
    return Closer(
        settings=settings,
        dynamodb=boto3.client("dynamodb", region_name=REGION),
        stepfunctions=boto3.client("stepfunctions", region_name=REGION),
        sqs=boto3.client("sqs", region_name=REGION),
        metrics=Metrics(namespace="tweetlens"),
    )
