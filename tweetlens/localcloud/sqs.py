"""SQS visibility timeouts on a compressed clock, the way ``time_scale`` compresses retries.

A message that fails comes back only after its visibility timeout: with the 180 s a queue
needs in AWS (six times its function's timeout), a test of redelivery or of a redrive
policy's ``maxReceiveCount`` would wait minutes. ``visibility_timeout_scale`` multiplies
every visibility timeout the emulator applies: the queue's ``VisibilityTimeout`` on each
receive, a receive's own ``VisibilityTimeout``, and ``ChangeMessageVisibility`` (single and
batch). What the API reports is unchanged (``GetQueueAttributes`` still says 180), so the
template's values are checked as written; only the clock they run on is faster.

``install_receive_fixes`` takes out two costs moto's ``ReceiveMessage`` pays for every message
it delivers, both growing with the queue: the retention check reads one attribute through
``GetQueueAttributes``, which computes every attribute, the approximate counts included (a
walk over all the queue's messages, three times over), and each visibility check turns the
clock into a ``datetime`` and back. With 1,000 messages queued this was a fifth of the
emulator's time in a 1,000-image bench. The answers are the same: the retention period is
the one the queue has, the clock the same epoch seconds.

``install_attributes_once``: moto's ``GetQueueAttributes`` with named attributes computes the
queue's whole ``attributes`` dict (approximate counts included, each a walk over the queue's
messages) three times for every name asked: ``name in queue.attributes``, then ``.get`` twice.
The local cloud's idle check asks for three counts of each polled queue five times a second,
so that was nine walks of every queue per check (3 % of the emulator's GIL time in a bench of
EXPRESS at concurrency 10, more with a long queue). Within one call the dict is now computed
once and read for every name: the same values, from one moment of the queue.

``install_atomic_message_list``: moto's ``Queue.delete_message`` rebuilds the queue's message
list and assigns it back without the lock ``add_message`` holds while it appends. Two deletes
at once (two batches of one mapping finishing together), or a delete beside a send, each copy
the list and the last assignment wins: the other delete is undone (the message, received and
invisible, comes back after its visibility timeout although it was deleted) or the sent message
is gone (lost, though ``SendMessage`` answered with its id). The same holds for a receive moving
a message to its dead-letter queue beside a delete. In SQS a deleted message stays deleted and
an accepted one stays accepted, so deletes and receives now hold the queue's own lock (a long
poll still releases it while it waits, as ``add_message``'s notification expects).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import moto.sqs.models as sqs_models
from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.models import Message, Queue, SQSBackend

from tweetlens.localcloud._patching import PatchSet


def install_visibility_timeout_scale(patches: PatchSet, scale: float) -> None:
    """Make every visibility timeout last ``scale`` times as long (1.0: unchanged)."""
    if scale <= 0:
        raise ValueError("visibility_timeout_scale must be positive")
    if scale == 1.0:
        return

    # moto routes receives (queue default or the call's own timeout), ChangeMessageVisibility
    # and its batch form through this one method; a timeout of 0 stays 0 (visible now).
    def change_visibility(self: Any, visibility_timeout: int) -> None:
        self.visible_at = unix_time_millis() + int(visibility_timeout) * 1000 * scale

    patches.replace(Message, "change_visibility", change_visibility)


def install_receive_fixes(patches: PatchSet) -> None:
    """moto's receive path without its per-message O(queue) work (module docstring)."""

    def is_message_valid_based_on_retention_period(
        backend: Any, queue_name: str, message: Any
    ) -> bool:
        # The attribute GetQueueAttributes would report, read without computing the others.
        retention_period = backend.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > fast_unix_time())

    patches.replace(
        SQSBackend,
        "is_message_valid_based_on_retention_period",
        is_message_valid_based_on_retention_period,
    )
    # moto's SQS models read the clock through these two names only.
    patches.replace(sqs_models, "unix_time", fast_unix_time)
    patches.replace(sqs_models, "unix_time_millis", fast_unix_time_millis)


def fast_unix_time(dt: Any = None) -> float:
    """``moto.core.utils.unix_time``: epoch seconds, from ``time.time()`` when no datetime is
    given (moto builds a naive UTC datetime and subtracts the epoch from it)."""
    return time.time() if dt is None else unix_time(dt)


def fast_unix_time_millis(dt: Any = None) -> float:
    """``moto.core.utils.unix_time_millis``, as ``fast_unix_time``."""
    return time.time() * 1000.0 if dt is None else unix_time_millis(dt)


def install_attributes_once(patches: PatchSet) -> None:
    """``GetQueueAttributes`` computes each queue's attributes once per call (docstring)."""
    computing = threading.local()
    compute: Callable[[Any], dict[str, Any]] = Queue.__dict__["attributes"].fget
    original = SQSBackend.get_queue_attributes

    def attributes(queue: Any) -> dict[str, Any]:
        memo: dict[int, dict[str, Any]] | None = getattr(computing, "memo", None)
        if memo is None:
            return compute(queue)
        if id(queue) not in memo:
            memo[id(queue)] = compute(queue)
        return memo[id(queue)]

    def get_queue_attributes(
        backend: Any, queue_name: str, attribute_names: list[str]
    ) -> dict[str, Any]:
        computing.memo = {}
        try:
            answer: dict[str, Any] = original(backend, queue_name, attribute_names)
            return answer
        finally:
            computing.memo = None

    patches.replace(Queue, "attributes", property(attributes))
    patches.replace(SQSBackend, "get_queue_attributes", get_queue_attributes)


def install_atomic_message_list(patches: PatchSet) -> None:
    """Deletes, receives and sends change a queue's message list one at a time (docstring)."""
    delete_message = Queue.delete_message
    receive_message = SQSBackend.receive_message

    def locked_delete_message(queue: Any, receipt_handle: str) -> None:
        # The Condition's lock is re-entrant: the same one add_message appends under.
        with queue._messages_lock:
            delete_message(queue, receipt_handle)

    def locked_receive_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = backend.get_queue(queue_name)
        # A long poll waits in Queue.wait_for_messages, on this Condition: wait() releases
        # the lock however often it is held, so sends and deletes go on meanwhile.
        with queue._messages_lock:
            return receive_message(backend, queue_name, *args, **kwargs)

    patches.replace(Queue, "delete_message", locked_delete_message)
    patches.replace(SQSBackend, "receive_message", locked_receive_message)
