"""The Step Functions fixes that need no running execution. No network.

The end states themselves (TIMED_OUT, ABORTED, FAILED) are driven through real executions in
``test_sample_app_events``.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import (
    ProgramRunning,
    ProgramStopped,
    ProgramTimedOut,
)
from moto.stepfunctions.parser.backend.execution import Execution

from tweetlens.localcloud import PatchSet
from tweetlens.localcloud.stepfunctions import install_end_states


class _Listener:
    def __init__(self) -> None:
        self.reports: list[str] = []

    def changing(self) -> AbstractContextManager[None]:
        return nullcontext()

    def __call__(self, execution: Any, status: str) -> None:
        self.reports.append(status)


def _env(state: Any) -> Any:
    """The parts of moto's ``Environment`` that its end transitions touch."""
    return SimpleNamespace(
        _state_mutex=threading.RLock(),
        _program_state=state,
        _frames=[],
        program_state_event=threading.Event(),
    )


def test_a_listed_execution_not_yet_started_reads_as_running() -> None:
    # GIVEN the fixes installed, and an execution moto has listed but not started
    patches = PatchSet()
    install_end_states(patches, _Listener())
    unstarted = SimpleNamespace(exec_status=None)
    try:
        # WHEN its status is read (as ListExecutions does)
        status = Execution.status.fget(unstarted)
    finally:
        patches.restore()
    # THEN it is RUNNING rather than a crash
    assert status == "RUNNING"


def test_the_first_end_of_a_program_is_its_end() -> None:
    # GIVEN the fixes installed, a stopped program and a running one
    patches = PatchSet()
    install_end_states(patches, _Listener())
    stopped = _env(ProgramStopped(stop_date=None, error="Operator", cause="test"))
    running = _env(ProgramRunning())
    try:
        # WHEN a late task failure and a timeout reach the stopped one, and a timeout the other
        Environment.set_error(stopped, error={"error": "Late"})
        Environment.set_timed_out(stopped)
        Environment.set_timed_out(running)
    finally:
        patches.restore()
    # THEN the stopped one stays stopped (moto would overwrite it), the running one times out
    assert isinstance(stopped._program_state, ProgramStopped)
    assert isinstance(running._program_state, ProgramTimedOut)
