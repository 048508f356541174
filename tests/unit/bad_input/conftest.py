"""Fixtures of the bad-input tables, reused from the suites of the entry points they probe."""

from __future__ import annotations

from tests.unit.classifier.conftest import cloud
from tests.unit.producer.conftest import (
    aws,
    load_app,
    log_output,
    replay_env,
    sqs_refuses_what_sqs_refuses,
)
from tests.unit.statemachine.conftest import closer, workflow

__all__ = [
    "aws",
    "closer",
    "cloud",
    "load_app",
    "log_output",
    "replay_env",
    "sqs_refuses_what_sqs_refuses",
    "workflow",
]
