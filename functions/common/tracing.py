"""Powertools' Tracer, without loading the X-Ray SDK when tracing is off.

Powertools builds its default provider from the X-Ray SDK even when tracing is disabled, and
importing ``aws_xray_sdk.core`` makes two botocore clients for centralised sampling: about a
second of a cold start, more than boto3 and a client together. Where tracing is off (outside
Lambda, under ``sam local``, or ``POWERTOOLS_TRACE_DISABLED``), the Tracer gets a provider
that records nothing instead, which is all a disabled Tracer does anyway. In Lambda with
``Tracing: Active`` nothing changes: the X-Ray provider is built as before.
"""

from __future__ import annotations

import numbers
import os
import traceback
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _Segment(BaseSegment):
    """A segment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(
        self, exception: BaseException, stack: list[traceback.StackSummary], remote: bool = False
    ) -> None:
        return None


class DisabledProvider(BaseProvider):
    """The provider of a Tracer that traces nothing: every call is accepted and dropped."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _Segment()

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: Any = None, **kwargs: Any
    ) -> AsyncGenerator[BaseSegment, None]:
        yield _Segment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


def tracing_disabled() -> bool:
    """Powertools' documented rule: off when POWERTOOLS_TRACE_DISABLED is true, outside Lambda
    (no LAMBDA_TASK_ROOT), and under the SAM CLI or Chalice's local emulators."""
    if resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false")):
        return True
    return (
        not os.getenv("LAMBDA_TASK_ROOT")
        or bool(os.getenv("AWS_SAM_LOCAL"))
        or bool(os.getenv("AWS_CHALICE_CLI_MODE"))
    )


def make_tracer() -> Tracer:
    """The function's Tracer: the X-Ray one when tracing is on, one that loads nothing if off."""
    if tracing_disabled():
        return Tracer(disabled=True, provider=DisabledProvider())
    return Tracer()
