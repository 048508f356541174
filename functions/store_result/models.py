"""The task input Step Functions sends and the output it gets back."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.messages import PhotoMessage


class DetectedLabel(BaseModel):
    """One label of a DetectLabels answer; only the fields stored are kept."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    Name: Annotated[str, Field(min_length=1, max_length=256)]
    Confidence: Annotated[float, Field(ge=0, le=100)]


class StoreRequest(BaseModel):
    """Input of the Store Result state (see statemachine/classify_image.asl.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: PhotoMessage
    # A Standard execution's ARN (":execution:") or an Express one's (":express:").
    execution: Annotated[
        str, Field(pattern=r"^arn:aws[a-z-]*:states:[^\s]+:(execution|express):[^\s]+$")
    ]
    image_key: Annotated[str, Field(min_length=1, max_length=1_024)]
    # DynamoDB transactions hold at most 100 items: the result item plus MaxLabels (<= 50)
    # label puts leave room for the deletes of stale label items.
    labels: Annotated[list[DetectedLabel], Field(max_length=50)]
    classified_at: Annotated[str, Field(min_length=1, max_length=64)]


class StoreResponse(BaseModel):
    """What the execution outputs when the image is classified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["DONE"] = "DONE"
    url: str
    image_key: str
    labels: list[str]
