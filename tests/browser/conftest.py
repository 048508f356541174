"""Fixtures of the browser tests: one headless Chromium, one console over one running pipeline.

Chromium is shared by the whole session; each module that needs the console deploys the
pipeline once (as tests/cli does) and serves the console beside it, as `tweetlens up
--console` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.browser import browser_kit
from tests.cli.cli_testkit import RunningStack
from tests.integration.pipeline_kit import BATCHING_WINDOW_SCALE, STANDARD
from tweetlens.console import CloudActivity, ConsoleData, ConsoleServer, create_app
from tweetlens.demo import deployed
from tweetlens.pipeline import PRODUCER, LocalPipeline


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    problem = browser_kit.missing()
    if problem is not None:
        # Failing, not skipping: `make test` installs the browser, and a skipped browser suite
        # would let a broken console pass CI.
        pytest.fail(problem)
    with browser_kit.chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The demo stream classified on one local pipeline, shared by the tests of a module.

    STANDARD: the console's Executions page over ListExecutions, in a browser. Its EXPRESS
    listing (from the workflow's log group) is tested in tests/integration/test_express_sync.py
    and tests/unit/console.
    """
    state_file = tmp_path_factory.mktemp("state") / "local-cloud.json"
    with LocalPipeline(
        state_file=state_file,
        parameter_overrides=STANDARD,
        batching_window_scale=BATCHING_WINDOW_SCALE,
    ) as pipeline:
        fired = pipeline.cloud.fire_schedule(PRODUCER)
        assert fired.ok, fired.error
        stack = RunningStack(pipeline=pipeline, state_file=state_file)
        stack.settle()
        yield stack


@pytest.fixture(scope="module")
def console_url(running_stack: RunningStack) -> Iterator[str]:
    """The console beside the pipeline, on a free loopback port: its address."""
    pipeline = running_stack.pipeline
    data = ConsoleData.fixed(deployed(pipeline), CloudActivity(pipeline.cloud))
    with ConsoleServer(create_app(data), port=0) as server:
        yield server.url
