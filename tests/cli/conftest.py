"""Fixtures of the CLI tests: a CliRunner, and one running local pipeline per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tests.cli.cli_testkit import RunningStack, make_runner
from tests.integration.pipeline_kit import BATCHING_WINDOW_SCALE, STANDARD
from tweetlens.pipeline import PRODUCER, LocalPipeline


@pytest.fixture
def runner() -> CliRunner:
    return make_runner()


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One local cloud per module: starting one takes seconds, every command reuses it.

    STANDARD: `trace` by the contract's execution names (``sha256(url)-n``), the closer's
    letters, redrive as the next named attempt. `tweetlens trace` of EXPRESS executions is
    tested in tests/integration/test_express_sync.py.
    """
    state_file = tmp_path_factory.mktemp("state") / "local-cloud.json"
    with LocalPipeline(
        state_file=state_file,
        parameter_overrides=STANDARD,
        batching_window_scale=BATCHING_WINDOW_SCALE,
    ) as pipeline:
        # One run reads the whole recorded stream (five pages, well under the rate limit).
        fired = pipeline.cloud.fire_schedule(PRODUCER)
        assert fired.ok, fired.error
        assert fired.payload["stopped_reason"] == "complete", fired.payload
        stack = RunningStack(pipeline=pipeline, state_file=state_file)
        stack.settle()
        yield stack
    assert not state_file.exists()
