"""moto's Step Functions interpreter without its ever-growing list of finished threads.

moto's interpreter (ported from LocalStack) appends every thread it starts to a module-level
list, ``TMP_THREADS``: per execution its worker and its program, one per state run with a
timeout (every Task), one per Map iteration worker, Parallel branch and callback wait.
Nothing in moto reads the list or removes from it, so a long-running local cloud keeps
several ``Thread`` objects for every execution it ever ran (an image's: about six, one per
Task among them). Here the list drops the threads that have finished as threads are added:
it holds about what runs now, and a thread that still runs is never dropped.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from tweetlens.localcloud._patching import PatchSet

# Every module of moto's interpreter that imported ``TMP_THREADS`` by name, and the list's own.
_PREFIX = "moto.stepfunctions.parser."
HOLDERS = (
    _PREFIX + "utils",
    _PREFIX + "asl.component.program.program",
    _PREFIX + "asl.component.test_state.program.test_state_program",
    _PREFIX + "asl.component.state.exec.state_map.iteration.inline_iteration_component",
    _PREFIX + "asl.component.state.exec.state_task.service.state_task_service_callback",
    _PREFIX + "asl.component.state.exec.state_parallel.branch_worker",
    _PREFIX + "asl.component.state.exec.execute_state",
    _PREFIX + "backend.execution_worker",
)


class LiveThreads(list[Any]):
    """A list of threads that forgets the finished ones as threads are appended.

    Pruning walks the whole list, so it runs when the list has doubled since the last walk
    (and holds at least ``prune_at`` threads): a constant cost per append on average, even
    with a thousand executions running at once, and never more than about twice the threads
    that still run (or ``prune_at``) are kept.
    """

    def __init__(self, prune_at: int = 64) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._prune_at = prune_at
        self._next_prune = prune_at

    def append(self, thread: Any) -> None:
        with self._lock:
            super().append(thread)
            if len(self) >= self._next_prune:
                # A thread appended before it is started is not alive yet: kept until it ran.
                self[:] = [t for t in self if not _finished(t)]
                self._next_prune = max(self._prune_at, 2 * len(self))


def _finished(thread: Any) -> bool:
    # Started (``ident`` set) and no longer alive: it will never run again.
    return (
        isinstance(thread, threading.Thread) and thread.ident is not None and not thread.is_alive()
    )


def install_live_threads(patches: PatchSet, prune_at: int = 64) -> LiveThreads:
    """Give every module of moto's interpreter one ``LiveThreads`` for ``TMP_THREADS`` until
    ``patches`` restore; the threads moto listed so far are carried over."""
    threads = LiveThreads(prune_at)
    modules = [importlib.import_module(name) for name in HOLDERS]
    for thread in modules[0].TMP_THREADS:
        threads.append(thread)
    for module in modules:
        if hasattr(module, "TMP_THREADS"):
            patches.replace(module, "TMP_THREADS", threads)
    return threads
