"""Step Functions fixes for moto's ASL interpreter: backend wiring, error names, time scale."""

from __future__ import annotations

import time
import types
from typing import Any

import moto.stepfunctions.models as sfn_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from tweetlens.localcloud._patching import PatchSet

# aws-sdk integration error prefixes as Step Functions names them ("Rekognition.XxxException").
# moto only knows DynamoDb and Sfn and falls back to the lower-case SDK name for the rest.
AWS_SDK_SERVICE_ERROR_NAMES: dict[str, str] = {
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "rekognition": "Rekognition",
    "s3": "S3",
    "sqs": "Sqs",
    "sns": "Sns",
    "lambda": "Lambda",
    "secretsmanager": "SecretsManager",
    "ssm": "Ssm",
    "eventbridge": "EventBridge",
    "cloudwatch": "CloudWatch",
}


def install(patches: PatchSet, *, time_scale: float) -> None:
    """Apply the Step Functions fixes; ``patches.restore()`` undoes them."""
    if time_scale <= 0:
        raise ValueError("time_scale must be positive")
    # CloudFormation creates state machines through the module-level backends; with execution
    # enabled the API serves the parser's backends, so both must be the same object.
    patches.replace(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)
    patches.replace(
        state_task_service_aws_sdk,
        "_SERVICE_ERROR_NAMES",
        {**state_task_service_aws_sdk._SERVICE_ERROR_NAMES, **AWS_SDK_SERVICE_ERROR_NAMES},
    )
    if time_scale != 1.0:
        _install_time_scale(patches, time_scale)


def _install_time_scale(patches: PatchSet, time_scale: float) -> None:
    # Retry backoff sleeps through the module's own ``time`` reference.
    scaled_time = types.SimpleNamespace(
        sleep=lambda seconds: time.sleep(max(0.0, float(seconds)) * time_scale),
        time=time.time,
        monotonic=time.monotonic,
    )
    patches.replace(retrier_decl, "time", scaled_time)

    def scaled_wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # Wait states block on the execution's stop event so that StopExecution still
        # interrupts them; only the duration shrinks.
        if wait_seconds > 0:
            env.program_state_event.wait(float(wait_seconds) * time_scale)

    patches.replace(WaitFunction, "_wait_interval", scaled_wait_interval)
