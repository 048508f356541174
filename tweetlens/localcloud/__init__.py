"""A Docker-less local cloud that deploys and runs a SAM template on this machine.

It knows SAM, CloudFormation and AWS semantics, not any particular application.
"""

from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.errors import (
    DeployError,
    EmulatorError,
    LocalCloudError,
    ScheduleExpressionError,
    UnknownResourceError,
    UnsupportedResourceError,
    WorkerError,
)
from tweetlens.localcloud.models import (
    EventSourceMappingConfig,
    FunctionConfig,
    IdleStatus,
    InvocationRecord,
    InvocationResult,
    LambdaError,
    ScheduleRuleConfig,
    StateMachineConfig,
)

__all__ = [
    "DeployError",
    "EmulatorError",
    "EventSourceMappingConfig",
    "FunctionConfig",
    "IdleStatus",
    "InvocationRecord",
    "InvocationResult",
    "LambdaError",
    "LocalCloud",
    "LocalCloudError",
    "ScheduleExpressionError",
    "ScheduleRuleConfig",
    "StateMachineConfig",
    "UnknownResourceError",
    "UnsupportedResourceError",
    "WorkerError",
]
