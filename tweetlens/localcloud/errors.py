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
