"""The deployed template on the local cloud: one pipeline per test module by default.

Each module here gets its own ``LocalPipeline`` (this repo's ``template.yaml``, the loopback
image server, the replayed X API); the modules of ``shared/`` share one (see its conftest).
Only one local cloud runs per process, so a module that needs a fresh pipeline or changes the
stack's configuration stays here. Helpers to feed and read a pipeline are in ``pipeline_kit``.
A module deploys the template's defaults (``WorkflowType`` EXPRESS) unless it overrides the
``workflow_parameters`` fixture, as the modules of STANDARD-only behaviour do
(``pipeline_kit.STANDARD``); the shared pipeline is STANDARD.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pipeline_kit import BATCHING_WINDOW_SCALE, Recordings
from tweetlens.demo import deployed
from tweetlens.pipeline import LocalPipeline
from tweetlens.stack import DeployedStack


@pytest.fixture(scope="module")
def recordings() -> Recordings:
    return Recordings()


@pytest.fixture(scope="module")
def workflow_parameters() -> dict[str, str]:
    """Template parameters of the module's pipeline: none, the template's defaults."""
    return {}


@pytest.fixture(scope="module")
def pipeline(workflow_parameters: dict[str, str]) -> Iterator[LocalPipeline]:
    """This repo's template deployed in the local cloud, shared by the tests of one module."""
    with LocalPipeline(
        parameter_overrides=workflow_parameters, batching_window_scale=BATCHING_WINDOW_SCALE
    ) as started:
        yield started


@pytest.fixture(scope="module")
def stack(pipeline: LocalPipeline) -> DeployedStack:
    return deployed(pipeline)
