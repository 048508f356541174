"""A Docker-less local cloud that deploys and runs a SAM template on this machine.

It knows SAM, CloudFormation and AWS semantics, not any particular application. Callers use
the names exported here; the submodules are the package's own layout and may move.
"""

# First: moto's EC2 models imported with one boto3 session (``motoimports``), before any
# module below imports them with three.
import tweetlens.localcloud.motoimports  # noqa: F401
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.activity import Activity
from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.deploy import Deployment, load_template
from tweetlens.localcloud.errors import (
    DeployError,
    EmulatorError,
    LocalCloudError,
    ScheduleExpressionError,
    UnknownFunctionError,
    UnknownResourceError,
    UnsupportedEventRuleError,
    UnsupportedResourceError,
    WorkerError,
)
from tweetlens.localcloud.faults import (
    CallerKiller,
    DynamoDbRequestFaults,
    DynamoDbThrottleBursts,
    FailedEntry,
    FaultError,
    KilledWorker,
    MessageLedger,
    RekognitionFaults,
    SendBatchFailures,
    compress_visibility_timeouts,
)
from tweetlens.localcloud.labelers import (
    MAX_S3_OBJECT_BYTES,
    DeferredLabeler,
    Labeler,
    LabelerError,
    OpenCvLabeler,
    PictureCachingLabeler,
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
from tweetlens.localcloud.rekognition import LabelRequest, RekognitionHook
from tweetlens.localcloud.statusevents import StatusChangeEmitter, drop_fraction

__all__ = [
    "MAX_S3_OBJECT_BYTES",
    "Activity",
    "AsyncInvocationRecord",
    "BusEvent",
    "CallerKiller",
    "DeferredLabeler",
    "DeployError",
    "Deployment",
    "DynamoDbRequestFaults",
    "DynamoDbThrottleBursts",
    "EmulatorError",
    "EventDelivery",
    "EventRuleConfig",
    "EventSourceMappingConfig",
    "FailedEntry",
    "FaultError",
    "FunctionConfig",
    "IdleStatus",
    "InputTransformerConfig",
    "InvocationRecord",
    "InvocationResult",
    "KilledWorker",
    "LabelRequest",
    "Labeler",
    "LabelerError",
    "LambdaError",
    "LocalCloud",
    "LocalCloudError",
    "MessageLedger",
    "OpenCvLabeler",
    "PatchSet",
    "PictureCachingLabeler",
    "RekognitionFaults",
    "RekognitionHook",
    "RuleTargetConfig",
    "ScheduleExpressionError",
    "SendBatchFailures",
    "StateMachineConfig",
    "StatusChangeEmitter",
    "UnknownFunctionError",
    "UnknownResourceError",
    "UnsupportedEventRuleError",
    "UnsupportedResourceError",
    "WorkerError",
    "compress_visibility_timeouts",
    "drop_fraction",
    "load_template",
]
