"""Fixtures of the ClassifyImage state machine tests (the harness is in harness.py).

The X-Ray SDK, which Powertools' Tracer loads even when tracing is disabled, creates its UDP
emitter socket at import; importing it here, at collection, keeps that (unused) socket out of
the tests, which run with pytest-socket's guard on.
"""

from __future__ import annotations

from collections.abc import Iterator

import aws_xray_sdk.core  # noqa: F401
import pytest

from tests.unit.statemachine.harness import Workflow, deployed_workflow


@pytest.fixture
def workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    """GIVEN the ClassifyImage state machine deployed against emulated AWS services."""
    with deployed_workflow(monkeypatch) as deployed:
        yield deployed
