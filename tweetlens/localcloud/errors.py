"""Named errors of the local cloud, so callers can tell a bad template from a broken emulator."""

from __future__ import annotations


class LocalCloudError(Exception):
    """Base class of every error the local cloud raises on purpose."""


class EmulatorError(LocalCloudError):
    """The AWS emulator could not be started or answered unexpectedly."""


class DeployError(LocalCloudError):
    """The template could not be transformed or the stack could not be created."""


class UnsupportedResourceError(DeployError):
    """The template holds a resource type the local cloud can neither create nor emulate."""

    def __init__(self, logical_id: str, resource_type: str) -> None:
        super().__init__(
            f"Resource {logical_id} has type {resource_type}, which the local cloud cannot create "
            "(see tweetlens.localcloud.deploy.SUPPORTED_RESOURCE_TYPES)"
        )
        self.logical_id = logical_id
        self.resource_type = resource_type


class ScheduleExpressionError(LocalCloudError):
    """A schedule expression is outside the supported rate()/cron() subset."""


class UnknownResourceError(LocalCloudError):
    """A logical id or function name that the deployed stack does not have."""


class WorkerError(LocalCloudError):
    """A Lambda worker process broke the runtime protocol."""


class UnsupportedEventRuleError(DeployError):
    """An EventBridge rule, bus or target uses something the local cloud cannot deliver."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}, which the local cloud cannot deliver")
        self.logical_id = logical_id
        self.reason = reason


class UnknownFunctionError(UnknownResourceError):
    """A function the template does not declare; ``functions`` are the ones it does."""

    def __init__(self, function: str, functions: frozenset[str]) -> None:
        listed = ", ".join(sorted(functions))
        super().__init__(
            f"no function {function!r} in the template; "
            + (f"functions: {listed}" if functions else "it declares no function")
        )
        self.function = function
        self.functions = functions


# Lambda's quota on a synchronous Invoke's request payload: 6 MB (6 x 1024 x 1024 bytes).
SYNC_INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024
# Lambda's error code for a payload over it (HTTP 413).
PAYLOAD_TOO_LARGE = "RequestEntityTooLargeException"


def payload_too_large_message(size: int) -> str:
    """Lambda's words for a synchronous Invoke payload over ``SYNC_INVOKE_PAYLOAD_LIMIT``."""
    return (
        f"{size} byte payload is too large for the RequestResponse invocation type "
        f"(limit {SYNC_INVOKE_PAYLOAD_LIMIT} bytes)"
    )


class PayloadTooLargeError(LocalCloudError):
    """A synchronous invocation whose event is over Lambda's payload quota: Lambda refuses it
    before the function runs (``RequestEntityTooLargeException``, HTTP 413)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{PAYLOAD_TOO_LARGE}: {payload_too_large_message(size)}")
        self.size = size
