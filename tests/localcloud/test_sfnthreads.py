"""``install_live_threads``: moto's interpreter keeps the threads that run, not every thread it
ever started; executions run as before."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser import utils as parser_utils

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.sfnthreads import HOLDERS, LiveThreads, install_live_threads

EXECUTIONS = 12
# Threads moto lists for one execution of DEFINITION (worker, program, Map, iterations).
THREADS_PER_EXECUTION = 7
# A machine whose executions start a thread for the program and one per Map iteration.
DEFINITION = json.dumps(
    {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "Iterator": {
                    "StartAt": "Double",
                    "States": {"Double": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
)


def _machine(sfn: Any) -> str:
    arn: str = sfn.create_state_machine(
        name="threads",
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    return arn


def _run(sfn: Any, machine: str, n: int) -> tuple[str, str | None]:
    """Run one execution to its end; its status and output."""
    execution = sfn.start_execution(
        stateMachineArn=machine, name=f"run-{n}", input=json.dumps({"items": [n, n + 1]})
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (answer := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not end"
        time.sleep(0.02)
    return answer["status"], answer.get("output")


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _finished_threads(threads: list[Any]) -> list[Any]:
    return [t for t in threads if t.ident is not None and not t.is_alive()]


def test_finished_executions_leave_no_thread_behind(sfn: Any) -> None:
    # GIVEN the live-thread list installed, pruning at every append
    patches = PatchSet()
    threads = install_live_threads(patches, prune_at=1)
    try:
        # WHEN executions, each with a Map of two iterations, run one after another, and
        # then one more once every thread listed so far has ended
        machine = _machine(sfn)
        outcomes = [_run(sfn, machine, n) for n in range(EXECUTIONS)]
        earlier = list(threads)
        for thread in earlier:
            thread.join(10)
        outcomes.append(_run(sfn, machine, EXECUTIONS))
        # THEN each succeeded with its output, and the list holds none of the ended threads:
        # only the last execution's
        assert outcomes == [("SUCCEEDED", json.dumps([n, n + 1])) for n in range(EXECUTIONS + 1)]
        assert parser_utils.TMP_THREADS is threads
        assert not set(threads) & set(earlier)
        assert 1 <= len(threads) <= THREADS_PER_EXECUTION
    finally:
        patches.restore()


def test_without_the_fix_moto_keeps_every_finished_thread(sfn: Any) -> None:
    # GIVEN moto's own list, as it is now
    before = len(parser_utils.TMP_THREADS)
    # WHEN the same executions run
    machine = _machine(sfn)
    for n in range(EXECUTIONS):
        _run(sfn, machine, n)
    # THEN moto kept every thread of every execution, nearly all of them ended: what the fix
    # takes out
    kept = parser_utils.TMP_THREADS[before:]
    assert len(kept) == THREADS_PER_EXECUTION * EXECUTIONS
    assert len(_finished_threads(kept)) >= THREADS_PER_EXECUTION * (EXECUTIONS - 1)


def test_many_executions_keep_the_list_within_its_pruning_bound(sfn: Any) -> None:
    # GIVEN the live-thread list installed as the local cloud installs it
    patches = PatchSet()
    threads = install_live_threads(patches)
    try:
        # WHEN three times as many executions as before run one after another
        machine = _machine(sfn)
        outcomes = [_run(sfn, machine, n) for n in range(3 * EXECUTIONS)]
        # THEN all succeeded, and the list never outgrew its bound (64: at most seven threads
        # run at a time) where moto's would hold all of them
        assert {status for status, _ in outcomes} == {"SUCCEEDED"}
        assert len(threads) < 64 < 3 * EXECUTIONS * THREADS_PER_EXECUTION
    finally:
        patches.restore()


def test_a_thread_not_yet_started_or_still_running_is_kept() -> None:
    # GIVEN a list pruning at every append, holding a thread not started yet and a running one
    threads = LiveThreads(prune_at=1)
    release = threading.Event()
    running = threading.Thread(target=release.wait)
    running.start()
    waiting = threading.Thread(target=lambda: None)
    threads.append(waiting)
    threads.append(running)
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    threads.append(done)
    try:
        # WHEN another thread is added
        later = threading.Thread(target=lambda: None)
        threads.append(later)
        # THEN the finished one is gone, the others kept in order
        assert list(threads) == [waiting, running, later]
    finally:
        release.set()
        running.join()


def test_restoring_gives_every_module_moto_s_list_back() -> None:
    # GIVEN moto's list and the fix installed
    modules = [importlib.import_module(name) for name in HOLDERS]
    original = parser_utils.TMP_THREADS
    # (every module of moto's interpreter loaded now that holds the list is one of them)
    holders = {
        name
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions")
        and getattr(module, "TMP_THREADS", None) is original
    }
    assert holders == set(HOLDERS)
    patches = PatchSet()
    threads = install_live_threads(patches)
    assert all(module.TMP_THREADS is threads for module in modules)
    # WHEN restored / THEN each module has moto's list again
    patches.restore()
    assert all(module.TMP_THREADS is original for module in modules)
