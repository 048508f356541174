"""A Step Functions task's ``TimeoutSeconds`` leaves out the wait for a local Lambda worker.

In AWS a Lambda task's invocation starts at once: Lambda scales out (to the account's
concurrency) instead of queueing it. Here a function runs on a few warm worker processes and
an invocation beyond them waits for one (``runtime.py``). With many executions in flight
that wait is the local cloud's, not the workflow's, yet moto's interpreter counted it against
the state's ``TimeoutSeconds``: in a 1,000-image bench (1,000 executions started within
seconds, 5 workers per function) three executions in four ended ``States.Timeout`` while
their Lambda calls were still queued, each then dead-lettered (and its late call still ran),
where AWS would have ended none.

So each task's timeout runs on a clock that stops while that task's Lambda invocation waits
for a worker. The interpreter's task thread tags its Lambda ``Invoke`` with its clock (a
header on the interpreter's own client); the emulator's Invoke finds the clock by that tag
and the runtime pauses it around the wait. The handler's run, a cold start's init and every
other task type (DynamoDB, aws-sdk) count in full, and so does the workflow's own
``TimeoutSeconds`` (real time, as in AWS); Lambda's own function timeout is unchanged.

The local labeler is the same kind of capacity: it labels one image at a time (OpenCV's
cascades are not thread-safe), so under load a Detect Labels task's call waited for the calls
ahead of it, and in a 500-post chaos run ~130 executions ended ``States.Timeout`` that way;
Rekognition does not queue one account's calls behind one another. So the interpreter's
``aws-sdk:rekognition:detectLabels`` call is tagged too, the emulator's DetectLabels serves
it under the tagged clock (``rekognition.py``), and the labeler pauses that clock while it
waits to enter its lock (``labelers.py``). The quota's decision, the injected latency and the
labelling itself count in full, as the service's own time would.
"""

from __future__ import annotations

import contextlib
import threading
import time
import types
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Final

from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.state.exec import execute_state

from tweetlens.localcloud._patching import PatchSet

HEADER: Final = "x-localcloud-task-clock"

_clocks: weakref.WeakValueDictionary[str, TaskClock] = weakref.WeakValueDictionary()
_local = threading.local()


class TaskClock(threading.Event):
    """The event a task's thread sets when it ends, whose ``wait(timeout)`` does not count
    the time spent in ``paused()``."""

    def __init__(self) -> None:
        super().__init__()
        self.token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._pauses = 0
        _clocks[self.token] = self
        # The task's thread is made next, on this thread: it takes this clock (TaskThread).
        _local.created = self

    def paused_seconds(self) -> float:
        with self._lock:
            current = 0.0 if self._paused_since is None else time.monotonic() - self._paused_since
            return self._paused_total + current

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._pauses == 0:
                self._paused_since = time.monotonic()
            self._pauses += 1
        try:
            yield
        finally:
            with self._lock:
                self._pauses -= 1
                if self._pauses == 0 and self._paused_since is not None:
                    self._paused_total += time.monotonic() - self._paused_since
                    self._paused_since = None

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        started = time.monotonic()
        while True:
            remaining = timeout - (time.monotonic() - started - self.paused_seconds())
            if remaining <= 0:
                return self.is_set()
            if super().wait(remaining):
                return True


class TaskThread(threading.Thread):
    """The thread running one task: it carries the clock made just before it, so the Lambda
    calls it makes are tagged with that clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock: TaskClock | None = getattr(_local, "created", None)
        _local.created = None

    def run(self) -> None:
        _local.task = self.clock
        try:
            super().run()
        finally:
            _local.task = None


def tag_request(request: Any, **_: Any) -> None:
    """botocore ``request-created`` handler: tag a call made by a task's thread."""
    clock: TaskClock | None = getattr(_local, "task", None)
    if clock is not None:
        request.headers[HEADER] = clock.token


# The calls whose wait for local capacity is left out of the calling task's timeout.
TAGGED_CALLS: Final = ("lambda.Invoke", "rekognition.DetectLabels")


def register_on(client: Any) -> None:
    """Tag the Invoke and DetectLabels calls of one of the interpreter's clients
    (``sfnclients``); a client of another service never makes them."""
    for call in TAGGED_CALLS:
        client.meta.events.register(f"request-created.{call}", tag_request)


@contextlib.contextmanager
def serving(token: str | None) -> Iterator[None]:
    """While the emulator serves a request tagged ``token`` on this thread, its waits for
    local capacity pause that task's clock (an untagged or unknown token: none)."""
    outer = getattr(_local, "serving", None)
    _local.serving = _clocks.get(token) if token else None
    try:
        yield
    finally:
        _local.serving = outer


@contextlib.contextmanager
def waiting_for_capacity() -> Iterator[None]:
    """Pause the clock of the task this request serves, if any, while it waits for local
    capacity (a Lambda worker, the labeler)."""
    clock: TaskClock | None = getattr(_local, "serving", None)
    if clock is None:
        yield
        return
    with clock.paused():
        yield


# The runtime's name for the wait for a worker (``LambdaRuntime(while_waiting=...)``).
waiting_for_worker = waiting_for_capacity


def install(patches: PatchSet) -> None:
    """Task timeouts on a clock that stops while a task waits for a local worker or the labeler."""
    # execute_state makes each task's end event with ``threading.Event()`` and its thread
    # with ``Thread(...)``: the module's own names for both are replaced.
    patches.replace(
        execute_state,
        "threading",
        types.SimpleNamespace(**{**vars(threading), "Event": TaskClock}),
    )
    patches.replace(execute_state, "Thread", TaskThread)
    original_invoke: Callable[..., Any] = LambdaFunction.invoke

    def invoke(function: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        token = request_headers.get(HEADER) if request_headers else None
        with serving(token):
            return original_invoke(function, body, request_headers, response_headers)

    patches.replace(LambdaFunction, "invoke", invoke)
