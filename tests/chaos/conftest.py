"""Fixtures of the chaos tests."""

from __future__ import annotations

import pytest

from tweetlens.chaos import ChaosConfig


@pytest.fixture
def small_config() -> ChaosConfig:
    return ChaosConfig.for_posts(40, seed=11)
