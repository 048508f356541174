"""Fault injection for the local cloud: the failures AWS produces on a bad day, on demand.

Every fault is a reversible patch on moto's in-process internals (through a ``PatchSet``) or
a Rekognition fault injector, so the deployed application is never changed: it meets the
fault exactly where it would in AWS, on the wire of the service it calls.

* ``DynamoDbThrottleBursts`` - bursts of ``ProvisionedThroughputExceededException`` on the
  DynamoDB data plane (from functions and from Step Functions' optimised integrations alike).
* ``RekognitionFaults`` - DetectLabels throttled above a requests-per-second quota, and
  ``InvalidImageFormatException`` for chosen images; counts the calls it let through.
* ``CallerKiller`` - SIGKILLs the local Lambda worker process that made the Nth matching
  call of an API action, right after the call took effect: a function dying mid-invocation.
* ``DynamoDbRequestFaults`` - chosen DynamoDB requests (by operation and request body) answered
  with a chosen DynamoDB error before the table sees them; every request recorded.
* ``SendBatchFailures`` - SendMessageBatch entries failed as SQS fails them: some entries of
  a batch once, on SQS's side (``SenderFault: false``), the rest accepted; chosen messages
  every time as the sender's fault (``SenderFault: true``, ``InvalidMessageContents``).
* ``MessageLedger`` - records every message accepted by chosen SQS queues (id, body and
  String message attributes), so a run can be accounted for even when the sender died before
  reporting what it sent.
* ``compress_visibility_timeouts`` - SQS visibility timeouts pass ``factor`` times faster,
  so messages of a crashed batch come back in seconds instead of minutes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_lambda_powertools import Logger
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time_millis
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.models import Message, Queue, SQSBackend

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.labelers import LabelerError
from tweetlens.localcloud.rekognition import LabelRequest
from tweetlens.localcloud.runtime import WORKER_SCRIPT

logger = Logger(service="localcloud")

DYNAMODB_ERROR_PREFIX: Final = "com.amazonaws.dynamodb.v20120810#"
# The data-plane calls an application makes; control-plane calls are never throttled here.
DYNAMODB_DATA_OPERATIONS: Final = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "query",
)
_PROC: Final = Path("/proc")


class FaultError(Exception):
    """A fault cannot be installed or configured as asked."""


class DynamoDbThrottleBursts:
    """After every ``every`` data-plane requests, the next ``burst`` ones are throttled.

    Keep ``burst`` below the callers' retry budget (a client makes 2 or 3 attempts where its
    function bounds its calls, 10 under botocore's defaults for DynamoDB; the state machine's
    Retry adds 2 or 3 more): a burst is an outage to ride out, not to lose a message to.
    """

    def __init__(
        self, *, every: int, burst: int, operations: Collection[str] = DYNAMODB_DATA_OPERATIONS
    ) -> None:
        if every < 1 or burst < 1:
            raise FaultError("every and burst must be at least 1")
        unknown = set(operations) - set(DYNAMODB_DATA_OPERATIONS)
        if unknown:
            raise FaultError(f"not DynamoDB data-plane operations: {sorted(unknown)}")
        self.every = every
        self.burst = burst
        self.operations = tuple(operations)
        self._lock = threading.Lock()
        self._seen = 0
        self._stopped = False
        self.throttled: Counter[str] = Counter()

    def install(self, patches: PatchSet) -> None:
        for operation in self.operations:
            original = getattr(DynamoHandler, operation)
            patches.replace(DynamoHandler, operation, self._wrap(operation, original))

    def stop(self) -> None:
        """Throttle nothing from now on (the counts so far are kept)."""
        with self._lock:
            self._stopped = True

    def should_throttle(self) -> bool:
        with self._lock:
            if self._stopped:
                return False
            position = self._seen % (self.every + self.burst)
            self._seen += 1
            return position >= self.every

    def _wrap(self, operation: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        faults = self

        def throttled(handler: Any) -> Any:
            if faults.should_throttle():
                with faults._lock:
                    faults.throttled[operation] += 1
                raise JsonRESTError(
                    DYNAMODB_ERROR_PREFIX + "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded. "
                    "Consider increasing your provisioning level with the UpdateTable API.",
                )
            return original(handler)

        return throttled


DynamoDbRequest = dict[str, Any]


class DynamoDbRequestFaults:
    """Scripted DynamoDB errors: the next matching request of an operation fails, once.

    ``fail_next("PutItem", matches, "ConditionalCheckFailedException", "…")`` answers the next
    PutItem whose parsed request body ``matches`` with that error, before the table sees it;
    the failures are used up in the order they were scripted. Every request of the watched
    operations is recorded (``count``).
    """

    OPERATIONS: Final = {
        "PutItem": "put_item",
        "UpdateItem": "update_item",
        "DeleteItem": "delete_item",
        "TransactWriteItems": "transact_write_items",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[tuple[str, Callable[[DynamoDbRequest], bool], str, str]] = []
        self.requests: list[tuple[str, DynamoDbRequest]] = []

    def fail_next(
        self,
        operation: str,
        matches: Callable[[DynamoDbRequest], bool],
        code: str,
        message: str,
    ) -> None:
        if operation not in self.OPERATIONS:
            raise FaultError(f"{operation} is not one of {sorted(self.OPERATIONS)}")
        with self._lock:
            self._failures.append((operation, matches, code, message))

    def count(self, operation: str, matches: Callable[[DynamoDbRequest], bool]) -> int:
        with self._lock:
            return sum(1 for seen, body in self.requests if seen == operation and matches(body))

    def install(self, patches: PatchSet) -> None:
        for operation, method in self.OPERATIONS.items():
            patches.replace(
                DynamoHandler, method, self._checked(operation, getattr(DynamoHandler, method))
            )

    def _checked(self, operation: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        faults = self

        def handler(response: Any) -> Any:
            # moto has already parsed the JSON request body into a dict when this runs.
            faults._check(operation, dict(response.body))
            return original(response)

        return handler

    def _check(self, operation: str, body: DynamoDbRequest) -> None:
        with self._lock:
            self.requests.append((operation, body))
            scripted = next(
                (
                    failure
                    for failure in self._failures
                    if failure[0] == operation and failure[1](body)
                ),
                None,
            )
            if scripted is None:
                return
            self._failures.remove(scripted)
        _operation, _matches, code, message = scripted
        raise JsonRESTError(f"com.amazonaws.dynamodb.v20120810#{code}", message)


class RekognitionFaults:
    """A ``RekognitionHook.fault_injector``: a requests-per-second quota and bad images.

    The quota is a token bucket, as AWS enforces TPS limits: ``requests_per_second`` tokens
    a second, at most ``burst`` saved up. A call finding no token gets ``ThrottlingException``
    and is not counted as answered (AWS does not bill it). A call for a source in
    ``invalid_sources`` that gets a token is answered with ``InvalidImageFormatException``.
    """

    def __init__(
        self,
        *,
        requests_per_second: float,
        burst: int = 1,
        invalid_sources: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_second <= 0 or burst < 1:
            raise FaultError("requests_per_second must be positive and burst at least 1")
        self.requests_per_second = requests_per_second
        self.burst = burst
        self.invalid_sources = frozenset(invalid_sources)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._refilled_at = clock()
        self.throttled = 0
        self.invalid = 0
        # Calls past the rate limit, per source; and of them, those answered with labels.
        self.accepted: Counter[str] = Counter()
        self.labelled: Counter[str] = Counter()

    def __call__(self, request: LabelRequest) -> None:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(self.burst, self._tokens + elapsed * self.requests_per_second)
            self._refilled_at = now
            if self._tokens < 1:
                self.throttled += 1
                raise LabelerError("ThrottlingException", "Rate exceeded")
            self._tokens -= 1
            self.accepted[request.source] += 1
            if request.source in self.invalid_sources:
                self.invalid += 1
                raise LabelerError(
                    "InvalidImageFormatException", "Request has invalid image format"
                )
            self.labelled[request.source] += 1


@dataclass(frozen=True)
class KilledWorker:
    pid: int
    handler: str
    action: str
    call_number: int


class CallerKiller:
    """SIGKILL the worker of ``handler`` that made the ``after``-th ``action`` call.

    ``response_class`` is the moto response class serving the action (e.g. ``SQSResponse``
    and ``"send_message_batch"``). The call completes inside the emulator first, so the
    effect is durable and the caller dies without ever reading the answer - the worst moment
    for it. The caller is found from the request's TCP peer: its socket's inode in
    ``/proc/net/tcp*``, then the child process holding that socket (Linux only).
    """

    def __init__(self, response_class: type, action: str, *, handler: str, after: int) -> None:
        if after < 1:
            raise FaultError("after must be at least 1")
        if not callable(getattr(response_class, action, None)):
            raise FaultError(f"{response_class.__name__} has no action {action!r}")
        self.response_class = response_class
        self.action = action
        self.handler = handler
        self.after = after
        self._lock = threading.Lock()
        self._calls = 0
        self.killed: list[KilledWorker] = []

    def install(self, patches: PatchSet) -> None:
        original = getattr(self.response_class, self.action)
        killer = self

        def wrapped(response: Any) -> Any:
            result = original(response)
            killer._after_call(response)
            return result

        patches.replace(self.response_class, self.action, wrapped)

    def _after_call(self, response: Any) -> None:
        environ = getattr(getattr(response, "normalized_request", None), "environ", {})
        try:
            peer_port = int(environ["REMOTE_PORT"])
            server_port = int(environ["SERVER_PORT"])
        except (KeyError, TypeError, ValueError):
            return  # an in-process call (no socket): never a worker
        pid = caller_pid(peer_port, server_port)
        if pid is None or not _is_worker_of(pid, self.handler):
            return
        with self._lock:
            self._calls += 1
            if self._calls != self.after:
                return
            killed = KilledWorker(pid, self.handler, self.action, self._calls)
            self.killed.append(killed)
        logger.info("Killing a worker mid-invocation", pid=pid, action=self.action)
        os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class FailedEntry:
    queue: str
    body: str
    code: str
    sender_fault: bool


class SendBatchFailures:
    """SendMessageBatch entries that fail while the rest of their batch is accepted.

    On ``queue_names`` only. The first entry of a batch fails on SQS's side (``InternalError``,
    ``SenderFault: false``) until ``transient`` such failures were injected, each body once: the
    same message sent again is accepted, as a retry after a passing fault is. An entry whose
    body ``refuse`` picks fails as the sender's fault (``InvalidMessageContents``,
    ``SenderFault: true``) every time it is sent: sending it again cannot help. A failed entry
    never reaches the queue (nor a ``MessageLedger``).
    """

    TRANSIENT_CODE: Final = "InternalError"
    PERMANENT_CODE: Final = "InvalidMessageContents"

    def __init__(
        self,
        queue_names: Collection[str],
        *,
        transient: int,
        refuse: Callable[[str], bool] = lambda _body: False,
    ) -> None:
        if transient < 0:
            raise FaultError("transient must not be negative")
        self.queue_names = frozenset(queue_names)
        self.transient = transient
        self._refuse = refuse
        self._lock = threading.Lock()
        self._failed_once: set[str] = set()
        self.failed: list[FailedEntry] = []

    @property
    def transient_failures(self) -> int:
        return sum(not entry.sender_fault for entry in self.failed)

    @property
    def refusals(self) -> int:
        return sum(entry.sender_fault for entry in self.failed)

    def install(self, patches: PatchSet) -> None:
        original = SQSBackend.send_message_batch
        faults = self

        def send_message_batch(
            backend: Any, queue_name: str, entries: dict[str, dict[str, Any]]
        ) -> tuple[list[Message], list[dict[str, Any]]]:
            if queue_name not in faults.queue_names:
                return original(backend, queue_name, entries)
            kept, failed = faults._split(queue_name, entries)
            messages, errors = original(backend, queue_name, kept) if kept else ([], [])
            return messages, [*failed, *errors]

        patches.replace(SQSBackend, "send_message_batch", send_message_batch)

    def _split(
        self, queue_name: str, entries: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        kept: dict[str, dict[str, Any]] = {}
        failed: list[dict[str, Any]] = []
        with self._lock:
            for position, (key, entry) in enumerate(entries.items()):
                body = str(entry["MessageBody"])
                if self._refuse(body):
                    failure = FailedEntry(queue_name, body, self.PERMANENT_CODE, True)
                    message = "chaos: SQS refused the message as the sender's fault"
                elif (
                    position == 0
                    and self.transient_failures < self.transient
                    and body not in self._failed_once
                ):
                    self._failed_once.add(body)
                    failure = FailedEntry(queue_name, body, self.TRANSIENT_CODE, False)
                    message = "chaos: SQS failed the entry on its side"
                else:
                    kept[key] = entry
                    continue
                self.failed.append(failure)
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": failure.sender_fault,
                        "Code": failure.code,
                        "Message": message,
                    }
                )
        return kept, failed


class MessageLedger:
    """Every message the emulator accepts on ``queue_names``: id → (queue name, body), and the
    String message attributes of those that carry any (a sender may tag what it sends)."""

    def __init__(self, queue_names: Collection[str]) -> None:
        self.queue_names = frozenset(queue_names)
        self._lock = threading.Lock()
        self._messages: dict[str, tuple[str, str]] = {}
        self._attributes: dict[str, dict[str, str]] = {}

    def install(self, patches: PatchSet) -> None:
        original = Queue.add_message
        ledger = self

        def add_message(queue: Any, message: Any) -> None:
            if queue.name in ledger.queue_names:
                attributes = {
                    str(name): str(value["StringValue"])
                    for name, value in (message.message_attributes or {}).items()
                    if isinstance(value, dict) and "StringValue" in value
                }
                with ledger._lock:
                    ledger._messages[str(message.id)] = (str(queue.name), str(message.body))
                    if attributes:
                        ledger._attributes[str(message.id)] = attributes
            original(queue, message)

        patches.replace(Queue, "add_message", add_message)

    def messages(self) -> dict[str, tuple[str, str]]:
        """Message id → (queue name, body), in the order the emulator accepted them."""
        with self._lock:
            return dict(self._messages)

    def attributes(self) -> dict[str, dict[str, str]]:
        """Message id → its String message attributes (name → value), for the messages of
        ``messages`` that carried any."""
        with self._lock:
            return {message_id: dict(found) for message_id, found in self._attributes.items()}


def compress_visibility_timeouts(patches: PatchSet, factor: float) -> None:
    """Make SQS visibility timeouts ``factor`` times as long (0 < factor <= 1)."""
    if not 0 < factor <= 1:
        raise FaultError("factor must be in (0, 1]")

    def change_visibility(message: Any, visibility_timeout: int) -> None:
        message.visible_at = unix_time_millis() + int(int(visibility_timeout) * 1000 * factor)

    patches.replace(Message, "change_visibility", change_visibility)


def caller_pid(peer_port: int, server_port: int) -> int | None:
    """The child process of this one whose TCP socket ``peer_port`` talks to ``server_port``."""
    inode = _socket_inode(peer_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in _child_pids():
        try:
            for fd in (_PROC / str(pid) / "fd").iterdir():
                if os.readlink(fd) == target:
                    return pid
        except OSError:
            continue
    return None


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == local_port
                and int(remote.rsplit(":", 1)[1], 16) == remote_port
            ):
                return inode
    return None


def _child_pids() -> list[int]:
    me = os.getpid()
    children: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # The command name in parentheses may contain spaces: split after its closing paren.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me:
            children.append(int(entry.name))
    return children


def _is_worker_of(pid: int, handler: str) -> bool:
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(WORKER_SCRIPT).encode() in argv and handler.encode() in argv
