"""Shared fixtures of the local cloud tests: the sample application and its events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tweetlens.localcloud.models import FunctionConfig

SAMPLE_APP = Path(__file__).parent / "sample_app"
SAMPLE_TEMPLATE = SAMPLE_APP / "template.yaml"
TEMPLATES = Path(__file__).parent / "templates"


def load_event(name: str) -> Any:
    """A sample event from the sample application's ``events/`` folder."""
    return json.loads((SAMPLE_APP / "events" / f"{name}.json").read_text(encoding="utf-8"))


def sample_function(
    handler: str,
    *,
    timeout: int = 5,
    memory_size: int = 128,
    reserved_concurrency: int | None = None,
    environment: dict[str, str] | None = None,
) -> FunctionConfig:
    """A function of the sample application, configured by hand (no emulator needed)."""
    name = handler.split(".", maxsplit=1)[0]
    return FunctionConfig(
        logical_id=f"{name.title()}Function",
        name=f"test-{name}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:test-{name}",
        handler=handler,
        runtime="python3.12",
        code_uri=SAMPLE_APP / "functions",
        timeout=timeout,
        memory_size=memory_size,
        environment=environment or {},
        reserved_concurrency=reserved_concurrency,
    )


@pytest.fixture
def sample_template() -> Path:
    return SAMPLE_TEMPLATE
