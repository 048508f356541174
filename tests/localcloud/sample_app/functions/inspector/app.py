"""Returns what a handler can see of its environment: proves the runtime sets it like Lambda."""

from __future__ import annotations

import os
import sys
from typing import Any

VISIBLE = (
    "STAGE",
    "ITEMS_TABLE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "POWERTOOLS_TRACE_DISABLED",
    "LAMBDA_TASK_ROOT",
    "EXTRA_SETTING",
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("inspecting", event.get("note", ""))
    print("to stderr", file=sys.stderr)
    return {
        "env": {name: os.environ.get(name) for name in VISIBLE},
        "sys_path_0": sys.path[0],
        "function_name": context.function_name,
        "memory_limit_in_mb": int(context.memory_limit_in_mb),
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
