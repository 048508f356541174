"""The producer's invocation event: an EventBridge scheduled event.

Modelled here rather than imported from Powertools' parser: ``aws_lambda_powertools.utilities.
parser.models`` runs the parser package's ``__init__``, which builds every envelope and every
event model Powertools ships, a cold-start cost the producer paid for this one model. Fields,
types, aliases and the Scheduler ``detail`` rule are those of Powertools 3's
``EventBridgeModel`` (the name too, which validation errors quote), so an event is accepted or
refused exactly as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class EventBridgeModel(BaseModel):
    """An EventBridge event; the producer reads only ``time`` and ``resources``."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: Annotated[str, Field(alias="detail-type")]
    detail: dict[str, Any] | type[BaseModel] | BaseModel
    replay_name: Annotated[str | None, Field(alias="replay-name")] = None

    @field_validator("detail", mode="before")
    @classmethod
    def scheduler_empty_detail(cls, value: Any, info: ValidationInfo) -> Any:
        # EventBridge Scheduler sends the detail as the string "{}" when there is no payload.
        return {} if info.data.get("source") == "aws.scheduler" and value == "{}" else value
