"""Scheduled checker: starts one router execution per value in the scheduled input."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", min_length=1)


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[int]
    batch: str = Field(default="scheduled", min_length=1)


def start_checks(sfn: Any, state_machine_arn: str, request: CheckRequest) -> list[str]:
    """Start one execution per value; the name is deterministic so a re-run is idempotent."""
    arns = []
    for index, value in enumerate(request.values):
        item_id = f"{request.batch}-{index}"
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=item_id,
            input=json.dumps({"id": item_id, "value": value}),
        )
        arns.append(response["executionArn"])
    return arns


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.model_validate(os.environ)
    request = CheckRequest.model_validate(event)
    arns = start_checks(boto3.client("stepfunctions"), settings.state_machine_arn, request)
    print(json.dumps({"message": "checks started", "count": len(arns)}))
    return {"started": len(arns)}
