"""State machine task: accepts non-negative values, rejects the rest with a named error."""

from __future__ import annotations

from typing import Any


class NegativeValue(Exception):
    """The value is below zero: permanent, the state machine records it as rejected."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    value = int(event["value"])
    if value < 0:
        raise NegativeValue(f"value {value} is negative")
    return {"id": event["id"], "value": value}
