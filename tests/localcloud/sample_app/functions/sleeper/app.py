"""Sleeps for the requested time: exercises timeouts and the concurrency cap."""

from __future__ import annotations

import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("sleeping", event["seconds"])
    remaining_before = context.get_remaining_time_in_millis()
    time.sleep(float(event["seconds"]))
    return {
        "slept": event["seconds"],
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_before_ms": remaining_before,
    }
