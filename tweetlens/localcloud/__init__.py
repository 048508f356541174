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
    UnsupportedEventRuleError,
    UnsupportedResourceError,
    WorkerError,
)
from tweetlens.localcloud.models import (
    AsyncInvocationRecord,
    BusEvent,
    EventDelivery,
    EventRuleConfig,
    EventSourceMappingConfig,
    FunctionConfig,
    IdleStatus,
    InputTransformerConfig,
    InvocationRecord,
    InvocationResult,
    LambdaError,
    RuleTargetConfig,
    StateMachineConfig,
)
from tweetlens.localcloud.statusevents import StatusChangeEmitter, drop_fraction

__all__ = [
    "AsyncInvocationRecord",
    "BusEvent",
    "DeployError",
    "EmulatorError",
    "EventDelivery",
    "EventRuleConfig",
    "EventSourceMappingConfig",
    "FunctionConfig",
    "IdleStatus",
    "InputTransformerConfig",
    "InvocationRecord",
    "InvocationResult",
    "LambdaError",
    "LocalCloud",
    "LocalCloudError",
    "RuleTargetConfig",
    "ScheduleExpressionError",
    "StateMachineConfig",
    "StatusChangeEmitter",
    "UnknownResourceError",
    "UnsupportedEventRuleError",
    "UnsupportedResourceError",
    "WorkerError",
    "drop_fraction",
]
