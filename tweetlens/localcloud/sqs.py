"""SQS visibility timeouts on a compressed clock, the way ``time_scale`` compresses retries.

A message that fails comes back only after its visibility timeout: with the 180 s a queue
needs in AWS (six times its function's timeout), a test of redelivery or of a redrive
policy's ``maxReceiveCount`` would wait minutes. ``visibility_timeout_scale`` multiplies
every visibility timeout the emulator applies: the queue's ``VisibilityTimeout`` on each
receive, a receive's own ``VisibilityTimeout``, and ``ChangeMessageVisibility`` (single and
batch). What the API reports is unchanged (``GetQueueAttributes`` still says 180), so the
template's values are checked as written; only the clock they run on is faster.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import unix_time_millis
from moto.sqs.models import Message

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
